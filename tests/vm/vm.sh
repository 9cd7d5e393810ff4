#!/usr/bin/env bash
# vm.sh: runs a test script inside a small virtual machine booted from
# Debian's kernel, with cgroup v2 only (cgroup_no_v1=all) and a virtio disk.
#
#   vm.sh --cache DIR --guest SCRIPT [--bin PROGRAM]... [--timeout SECONDS]
#
# DIR keeps the kernel between runs (the build directory's vm-cache/): the
# image and the few modules needed are taken from Debian's linux-image
# package with `apt-get download` + `dpkg-deb -x`, never installed on this
# machine. The initramfs holds busybox (static), each PROGRAM and the shared
# libraries ldd names for it, the modules (virtio, virtio_pci, virtio_blk,
# ext4 and what they depend on) and init.sh as /init. The disk is a fresh
# ext4 image on /dev/vda mounted on /mnt, where SCRIPT runs (as
# /guest/test.sh, with PROGRAMs in PATH). SCRIPT prints "VMTEST PASS ...",
# "VMTEST FAIL ..." and "VMTEST INFO ..." lines; they come back on the serial
# console and are printed here. Exit status 0 when SCRIPT exited 0 and no
# FAIL line was printed.
#
# The emulator (TCG) is used unless a short probe boot under KVM succeeds:
# on some machines /dev/kvm exists but a KVM guest hangs at boot.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache="" guest="" timeout=240
bins=()
while (($#)); do
  case $1 in
    --cache) cache=$2; shift 2 ;;
    --guest) guest=$2; shift 2 ;;
    --bin) bins+=("$2"); shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    *) echo "vm.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ -n $cache && -n $guest ]] || { echo "usage: vm.sh --cache DIR --guest SCRIPT [--bin PROGRAM]..." >&2; exit 2; }
die() { echo "vm.sh: $*" >&2; exit 1; }
for t in qemu-system-x86_64 busybox cpio mkfs.ext4 objcopy dpkg-deb apt-get; do
  command -v "$t" >/dev/null || die "$t is missing (bash scripts/deps.sh installs it)"
done
busybox_bin=$(command -v busybox)
ldd "$busybox_bin" >/dev/null 2>&1 && die "$busybox_bin is not static (install busybox-static)"
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# The modules to load, by name; their dependencies are added below.
wanted_modules=(virtio virtio_ring virtio_pci virtio_blk crc32c_generic ext4)

# ---- kernel: the newest one in the cache, else downloaded -------------
fetch_kernel() {  # prints the directory holding vmlinuz + modules/
  local dir
  dir=$(ls -d "$cache"/kernel-* 2>/dev/null | sort -V | tail -1 || true)
  if [[ -n $dir && -f $dir/vmlinuz && -f $dir/modules.order ]]; then echo "$dir"; return; fi
  local pkg
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1)
  if [[ -z $pkg ]]; then
    echo "vm.sh: no apt lists for linux-image-amd64; running apt-get update" >&2
    apt-get update -qq >&2 || die "apt-get update failed (needs root and the network)"
    pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1)
  fi
  [[ -n $pkg ]] || die "cannot find the package linux-image-amd64 depends on"
  local tmp; tmp=$(mktemp -d "$cache/download.XXXXXX")
  (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) || { rm -rf "$tmp"; die "apt-get download $pkg failed"; }
  dpkg-deb -x "$tmp"/*.deb "$tmp/x"
  local ver; ver=$(ls "$tmp/x/lib/modules")
  dir="$cache/kernel-$ver"
  rm -rf "$dir" && mkdir -p "$dir/modules"
  cp "$tmp/x/boot/vmlinuz-$ver" "$dir/vmlinuz"
  # Dependency closure of the wanted modules, dependencies first.
  local -A done=()
  local order=()
  add_module() {
    local name=$1 file dep deps
    [[ -n ${done[$name]:-} ]] && return
    done[$name]=1
    file=$(find "$tmp/x/lib/modules/$ver/kernel" -name "${name//_/[-_]}.ko*" | head -1)
    [[ -n $file ]] || { grep -q "/${name//_/[-_]}\.ko" "$tmp/x/lib/modules/$ver/modules.builtin" && return; die "no module $name in $pkg"; }
    deps=$(objcopy -O binary --only-section=.modinfo "$file" /dev/stdout | tr '\0' '\n' | sed -n 's/^depends=//p')
    for dep in ${deps//,/ }; do add_module "$dep"; done
    cp "$file" "$dir/modules/"
    order+=("$(basename "$file")")
  }
  for m in "${wanted_modules[@]}"; do add_module "$m"; done
  printf '%s\n' "${order[@]}" >"$dir/modules.order.tmp"
  mv "$dir/modules.order.tmp" "$dir/modules.order"
  rm -rf "$tmp"
  echo "$dir"
}
kdir=$(fetch_kernel)

# ---- initramfs ----------------------------------------------------------
work=$(mktemp -d "$cache/run.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,mnt,tmp,guest,usr/local/bin,modules}
cp "$busybox_bin" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$here/init.sh" "$root/init"
cp "$guest" "$root/guest/test.sh"
chmod 755 "$root/init"
cp "$kdir"/modules/* "$root/modules/"
cp "$kdir/modules.order" "$root/modules.order"
for b in "${bins[@]}"; do
  [[ $b == */* ]] || b=$(command -v "$b") || die "no program '$b' in PATH"
  cp -L "$b" "$root/usr/local/bin/"
  # Shared libraries (and the dynamic loader) at the paths ldd names.
  while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    [[ -e $root$lib ]] || cp -L "$lib" "$root$lib"
  done < <(ldd "$b" 2>/dev/null | grep -o '/[^ ]*' || true)
done
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 >"$work/initramfs.gz"

# ---- disk: ext4, fully initialised so no lazy-init writes compete -------
truncate -s 96M "$work/disk.img"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$work/disk.img"

boot() {  # boot ACCEL CMDLINE_EXTRA TIMEOUT LOG
  local accel=$1 extra=$2 limit=$3 log=$4
  local args=(-nodefaults -no-user-config -display none -no-reboot -m 512 -smp 1
              -kernel "$kdir/vmlinuz" -initrd "$work/initramfs.gz"
              -append "console=ttyS0 cgroup_no_v1=all panic=-1 quiet loglevel=3 $extra"
              -serial stdio
              -drive "file=$work/disk.img,format=raw,if=virtio,cache=unsafe")
  if [[ $accel == kvm ]]; then args+=(-accel kvm -cpu host); else args+=(-accel tcg); fi
  # In a subshell that cannot exec timeout (the "||"), so that bash's
  # "Aborted" notice for a crashed KVM probe goes to its /dev/null.
  (timeout -k 5 "$limit" qemu-system-x86_64 "${args[@]}" </dev/null >"$log" 2>&1 || true) 2>/dev/null
}

accel=tcg
if [[ -r /dev/kvm && -w /dev/kvm ]]; then
  t0=$(date +%s%N)
  boot kvm vmtest=probe 20 "$work/probe.log"
  if grep -q "VMTEST PROBE OK" "$work/probe.log"; then
    accel=kvm
  else
    echo "vm.sh: KVM probe boot failed or hung (20 s limit): $(tr -d '\r' <"$work/probe.log" | tail -1); using TCG" >&2
  fi
  echo "vm.sh: KVM probe took $((($(date +%s%N) - t0) / 1000000)) ms" >&2
fi

t0=$(date +%s%N)
boot "$accel" vmtest=run "$timeout" "$work/console.log"
secs=$((($(date +%s%N) - t0) / 1000000))
tr -d '\r' <"$work/console.log" | grep '^VMTEST ' || true
echo "vm.sh: kernel $(basename "$kdir"), accel $accel, VM ran ${secs} ms"
if ! grep -q '^VMTEST DONE' "$work/console.log"; then
  echo "vm.sh: the VM did not finish (timeout ${timeout} s?); last console lines:" >&2
  tr -d '\r' <"$work/console.log" | tail -20 >&2
  exit 1
fi
fails=$(tr -d '\r' <"$work/console.log" | grep -c '^VMTEST FAIL' || true)
tr -d '\r' <"$work/console.log" | grep -q '^VMTEST DONE rc=0$' && ((fails == 0))
