#!/usr/bin/env bash
# Installs what building, testing and benchmarking spanalloc needs on Debian 12.
# Idempotent: installs only the packages that are missing.
set -euo pipefail
pkgs=(build-essential g++ cmake ninja-build pkg-config libgtest-dev googletest
      valgrind python3 sqlite3 git time procps util-linux mount bsdutils e2fsprogs attr
      libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0 gnuplot-nox tini
      libnl-genl-3-dev libnl-3-dev libpam0g-dev libpam-modules passwd expect
      qemu-system-x86 busybox-static cpio btrfs-progs xfsprogs
      google-perftools golang-go
      clang libclang-rt-14-dev libpython3.11-testsuite redis-server redis-tools)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps.sh: missing packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  echo "deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
