#include "device.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace iolimit {
namespace {

bool parse_uint(const std::string &s, unsigned &out) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  out = static_cast<unsigned>(std::strtoul(s.c_str(), nullptr, 10));
  return true;
}

bool parse_majmin(const std::string &s, unsigned &maj, unsigned &min) {
  auto colon = s.find(':');
  if (colon == std::string::npos) return false;
  return parse_uint(s.substr(0, colon), maj) && parse_uint(s.substr(colon + 1), min);
}

bool exists(const std::string &p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

std::string uevent_value(const std::string &dir, const std::string &key) {
  std::ifstream f(dir + "/uevent");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key + "=", 0) == 0) return line.substr(key.size() + 1);
  return "";
}

}  // namespace

BlockDevice resolve_device(const std::string &spec, const std::string &sysfs) {
  BlockDevice d;
  if (!parse_majmin(spec, d.major, d.minor)) {
    struct stat st;
    if (stat(spec.c_str(), &st) != 0)
      throw std::runtime_error("cannot use '" + spec + "' as a device: " + strerror(errno));
    dev_t dev = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
    if (S_ISCHR(st.st_mode)) throw std::runtime_error("'" + spec + "' is a character device, not a block device");
    d.major = major(dev);
    d.minor = minor(dev);
    if (d.major == 0)
      throw std::runtime_error("no backing block device for '" + spec + "' (" + d.id() +
                               ": tmpfs, overlay, network or btrfs filesystem); pass --device DISK");
  }
  std::string dir = sysfs + "/dev/block/" + d.id();
  if (!exists(dir)) throw std::runtime_error("no such block device " + d.id());
  if (exists(dir + "/partition")) {
    // /sys/dev/block/M:m -> .../block/vda/vda1; the disk is the parent.
    char real[PATH_MAX];
    if (!realpath(dir.c_str(), real)) throw std::runtime_error("cannot resolve " + dir + ": " + strerror(errno));
    std::string parent(real);
    parent = parent.substr(0, parent.rfind('/'));
    std::ifstream f(parent + "/dev");
    std::string mm;
    if (!(f >> mm) || !parse_majmin(mm, d.major, d.minor))
      throw std::runtime_error("cannot find the disk holding partition " + d.id());
    dir = parent;
  }
  d.name = uevent_value(dir, "DEVNAME");
  return d;
}

}  // namespace iolimit
