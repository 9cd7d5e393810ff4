#!/usr/bin/env bash
# The installed library, seen by its users (tests/install/CMakeLists.txt):
#   install_test.sh find_package|pkg_config|deb BUILD_DIR VERSION
# find_package: `cmake --install` of the runtime and dev components into a
#   scratch prefix, which is then moved (the package must be relocatable);
#   a consumer project (consumer/) builds with find_package(spanalloc) and
#   runs, shared and static; a version the package does not offer is refused.
# pkg_config: the same tree through spanalloc.pc.
# deb: `cpack -G DEB`, the package's metadata and contents, installed with
#   dpkg into a scratch root (never the host's /usr), then a program run
#   under LD_PRELOAD and one linked against it.
set -euo pipefail
case_=$1 build=$(cd "$2" && pwd) version=$3
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install_test: $case_: $*" >&2; exit 1; }
cc=${CC:-cc}

install_tree() {  # install_tree PREFIX: the library's components only
  cmake --install "$build" --prefix "$1" --component runtime >/dev/null
  cmake --install "$build" --prefix "$1" --component dev >/dev/null
}
libdir_of() { dirname "$(find "$1" -name 'libspanalloc.so.*.*' | head -1)"; }

check_tree() {  # check_tree PREFIX: what the library installs, and nothing else
  local p=$1 lib
  lib=$(libdir_of "$p")
  [[ -n $lib ]] || fail "no libspanalloc.so.$version under $p"
  for f in "$p/include/spanalloc.h" "$p/include/spanalloc_version.h" "$lib/libspanalloc.so.$version" \
           "$lib/libspanalloc.a" "$lib/cmake/spanalloc/spanallocConfig.cmake" \
           "$lib/cmake/spanalloc/spanallocConfigVersion.cmake" "$lib/cmake/spanalloc/spanallocTargets.cmake" \
           "$lib/pkgconfig/spanalloc.pc"; do
    [[ -f $f ]] || fail "missing $f"
  done
  local major=${version%%.*}
  [[ $(readlink "$lib/libspanalloc.so.$major") == "libspanalloc.so.$version" ]] || fail "no libspanalloc.so.$major link"
  [[ -L $lib/libspanalloc.so ]] || fail "no libspanalloc.so development link"
  local dyn
  dyn=$(readelf -d "$lib/libspanalloc.so.$version")
  grep -q "SONAME.*\[libspanalloc.so.$major\]" <<<"$dyn" || fail "soname is not libspanalloc.so.$major"
  [[ ! -e $p/bin ]] || fail "the library's components installed $(ls "$p/bin")"
}

run_consumer() {  # run_consumer BINARY: prints spanalloc's line, needs nothing else
  local out
  out=$("$1") || fail "$1 failed"
  [[ $out == "consumer: spanalloc $version ok" ]] || fail "$1 printed: $out"
}

case $case_ in
find_package)
  install_tree "$tmp/prefix"
  check_tree "$tmp/prefix"
  mv "$tmp/prefix" "$tmp/moved"
  cmake -S "$here/consumer" -B "$tmp/consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$tmp/moved" -DSPANALLOC_WANT_VERSION="${version%.*}" >"$tmp/log" 2>&1 ||
    { cat "$tmp/log"; fail "configure of the consumer project failed"; }
  cmake --build "$tmp/consumer" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "build of the consumer project failed"; }
  dyn=$(readelf -d "$tmp/consumer/consumer")
  grep -q "NEEDED.*libspanalloc.so.${version%%.*}" <<<"$dyn" || fail "consumer does not need libspanalloc"
  dyn=$(readelf -d "$tmp/consumer/consumer_static")
  grep -q "NEEDED.*libspanalloc" <<<"$dyn" && fail "consumer_static needs the shared library"
  run_consumer "$tmp/consumer/consumer"
  run_consumer "$tmp/consumer/consumer_static"
  # A major version the package does not offer is refused.
  if cmake -S "$here/consumer" -B "$tmp/consumer-v" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/moved" \
       -DSPANALLOC_WANT_VERSION=$((${version%%.*} + 1)).0 >"$tmp/log" 2>&1; then
    fail "find_package accepted version $((${version%%.*} + 1)).0"
  fi
  grep -q "compatible with requested version" "$tmp/log" || { cat "$tmp/log"; fail "refused for another reason"; }
  echo "find_package: installed tree checked, consumer built and ran (shared and static)"
  ;;
pkg_config)
  install_tree "$tmp/prefix"
  mv "$tmp/prefix" "$tmp/moved"
  lib=$(libdir_of "$tmp/moved")
  export PKG_CONFIG_PATH=$lib/pkgconfig
  [[ $(pkg-config --modversion spanalloc) == "$version" ]] || fail "pkg-config version $(pkg-config --modversion spanalloc)"
  # shellcheck disable=SC2046
  $cc -O2 -o "$tmp/consumer" "$here/consumer/main.c" $(pkg-config --cflags --libs spanalloc) -Wl,-rpath,"$lib" ||
    fail "build with pkg-config flags failed"
  run_consumer "$tmp/consumer"
  deps=$(ldd "$tmp/consumer")
  grep -q "libspanalloc.so.${version%%.*} => $lib/" <<<"$deps" || fail "consumer did not load $lib: $deps"
  echo "pkg_config: $(pkg-config --cflags --libs spanalloc)"
  ;;
deb)
  cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/pkg" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "cpack failed"; }
  deb=$(ls "$tmp"/pkg/*.deb)
  [[ $(basename "$deb") == spanalloc_${version}_$(dpkg --print-architecture).deb ]] || fail "package file $(basename "$deb")"
  info=$(dpkg-deb --info "$deb")
  for field in "Package: spanalloc" "Version: $version" "Architecture: $(dpkg --print-architecture)" \
               "Depends: libc6" "Section: libs" "Maintainer: " "Description: "; do
    grep -q "^ $field" <<<"$info" || fail "control file lacks '$field': $info"
  done
  ctl=$tmp/control
  dpkg-deb --control "$deb" "$ctl"
  grep -q "^libspanalloc ${version%%.*} spanalloc (>= $version)$" "$ctl/shlibs" || fail "shlibs: $(cat "$ctl/shlibs")"
  grep -q "ldconfig" "$ctl/postinst" || fail "postinst does not run ldconfig"
  contents=$(dpkg-deb --contents "$deb")
  grep -q "/usr/include/spanalloc.h$" <<<"$contents" || fail "no header in the package"
  grep -q "/usr/lib/.*libspanalloc.so.$version$" <<<"$contents" || fail "no library in the package"
  grep -q "/usr/bin/" <<<"$contents" && fail "the package holds the tools: $contents"
  # dpkg into a scratch root with its own database: never the host's. The
  # maintainer scripts run outside the root (chrootless), so the ldconfig
  # they call is a stub first in PATH that notes the call: the host's cache
  # is left alone.
  mkdir -p "$tmp/bin"
  printf '#!/bin/sh\necho "ldconfig $*" >>"%s"\n' "$tmp/ldconfig.log" >"$tmp/bin/ldconfig"
  chmod +x "$tmp/bin/ldconfig"
  root=$tmp/root
  mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
  : >"$root/var/lib/dpkg/status"
  PATH="$tmp/bin:$PATH" dpkg --instdir="$root" --admindir="$root/var/lib/dpkg" --force-not-root --force-depends \
    --force-script-chrootless --no-triggers -i "$deb" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "dpkg -i failed"; }
  status=$(dpkg --admindir="$root/var/lib/dpkg" -s spanalloc)
  grep -q "^Status: install ok installed$" <<<"$status" || fail "dpkg does not list it as installed: $status"
  [[ -s $tmp/ldconfig.log ]] || fail "postinst did not run (no ldconfig call)"
  lib=$(libdir_of "$root/usr")
  [[ $lib == "$root"/usr/lib* ]] || fail "library at $lib"
  # Under LD_PRELOAD: a system program, with the exit report as evidence.
  err=$(SPANALLOC_REPORT=1 LD_PRELOAD="$lib/libspanalloc.so.${version%%.*}" ls / 2>&1 >/dev/null)
  grep -q "spanalloc report" <<<"$err" || fail "ls under LD_PRELOAD gave no report: $err"
  # Linked: built with the package's pkg-config file and header.
  export PKG_CONFIG_PATH=$lib/pkgconfig
  # shellcheck disable=SC2046
  $cc -O2 -o "$tmp/consumer" "$here/consumer/main.c" $(pkg-config --cflags --libs spanalloc) -Wl,-rpath,"$lib" ||
    fail "build against the package failed"
  run_consumer "$tmp/consumer"
  echo "deb: $(basename "$deb") ($(stat -c %s "$deb") bytes) installed into a scratch root; LD_PRELOAD and linked programs ran"
  ;;
*) fail "unknown case" ;;
esac
