#!/bin/sh
# /init of the test VM's initramfs (busybox sh). Mounts the kernel file
# systems and cgroup v2, loads the modules listed in /modules.order, mounts
# the ext4 disk /dev/vda on /mnt, runs /guest/test.sh and prints its exit
# status on the serial console, then powers the VM off.
# Lines the host reads all start with "VMTEST ".
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /sys/fs/cgroup /mnt /tmp
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup

off() {
  sync
  poweroff -f
  echo o >/proc/sysrq-trigger
  sleep 10
}

case " $(cat /proc/cmdline) " in
  *" vmtest=probe "*) echo "VMTEST PROBE OK"; off ;;
esac

while read -r m; do
  insmod "/modules/$m" || echo "VMTEST FAIL insmod $m"
done </modules.order
for _ in $(seq 50); do [ -b /dev/vda ] && break; sleep 0.1; done
if mount -t ext4 /dev/vda /mnt; then
  echo "VMTEST INFO kernel $(uname -r); cgroup.controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
  echo "VMTEST INFO disk $(cat /sys/block/vda/dev) ($(cat /sys/block/vda/queue/scheduler)); uptime at start $(cut -d' ' -f1 /proc/uptime) s"
  cd /mnt && sh /guest/test.sh
  echo "VMTEST DONE rc=$?"
else
  echo "VMTEST FAIL cannot mount /dev/vda"
  echo "VMTEST DONE rc=1"
fi
cd /
umount /mnt 2>/dev/null
off
