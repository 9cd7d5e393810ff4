// device: which whole disk a path or MAJ:MIN lives on.
//
// Throttling only works on whole disks: the kernel answers ENODEV for a
// partition's MAJ:MIN. A partition is mapped to its disk through sysfs
// (/sys/dev/block/MAJ:MIN/partition exists, the parent directory is the
// disk). Filesystems without a block device (tmpfs, overlay, NFS, btrfs'
// anonymous devices) have major 0 and are refused with a hint.
#pragma once

#include <string>

namespace iolimit {

struct BlockDevice {
  unsigned major = 0;
  unsigned minor = 0;
  std::string name;  // "vda", from sysfs uevent DEVNAME; may be empty
  std::string id() const { return std::to_string(major) + ":" + std::to_string(minor); }
};

// `spec`: "MAJ:MIN", a block device node, or any path (its filesystem's
// device). `sysfs` is the sysfs mount point (tests pass a fake tree).
// Throws std::runtime_error with a message for the user.
BlockDevice resolve_device(const std::string &spec, const std::string &sysfs = "/sys");

}  // namespace iolimit
