// cgroup: a throw-away cgroup with I/O limits, on cgroup v2 (io.max) or
// v1 (blkio.throttle.*).
//
// v2: the io controller (and memory, when available) is enabled in the
// parent's cgroup.subtree_control, so the new leaf has io.max and its own
// memory domain; with both, buffered writeback is charged to the leaf and
// throttled. v1: io and memory live in separate hierarchies, so writeback
// is charged to the root blkio cgroup and only direct/synchronous I/O is
// throttled (the note's finding). The leaf is always a new directory named
// iolimit-PID-N; it is removed by remove().
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "device.h"

namespace iolimit {

struct Limits {
  std::optional<uint64_t> rbps, wbps, riops, wiops;
  bool any() const { return rbps || wbps || riops || wiops; }
};

struct IoStats {
  uint64_t rbytes = 0, wbytes = 0, rios = 0, wios = 0;
};

// One mount from /proc/self/mountinfo that matters to us.
struct CgroupMounts {
  std::string v2;        // cgroup2 mount point, empty if none
  std::string v1_blkio;  // v1 hierarchy with blkio, empty if none
};
CgroupMounts parse_mountinfo(const std::string &text);
CgroupMounts find_cgroup_mounts();

// Parsers for the statistics files (pure, unit-tested).
IoStats parse_io_stat(const std::string &text, const BlockDevice &dev);         // v2 io.stat
IoStats parse_blkio_throttle(const std::string &bytes, const std::string &ios,  // v1
                             const BlockDevice &dev);
// "254:0 rbps=1048576 wiops=20"
std::string io_max_line(const BlockDevice &dev, const Limits &l);
// Words of a cgroup.controllers file.
bool has_controller(const std::string &controllers, const std::string &name);

class IoCgroup {
 public:
  virtual ~IoCgroup() = default;
  virtual std::string kind() const = 0;  // "cgroup v2 (io.max)" ...
  virtual const std::string &path() const = 0;
  virtual void add_process(pid_t pid) = 0;
  virtual IoStats stats() const = 0;
  // Pids still inside the cgroup.
  virtual std::vector<pid_t> processes() const = 0;
  // Kills everything inside, waits (bounded) until empty, removes the
  // directory. Returns an error message, or empty on success.
  virtual std::string remove() = 0;
  // Warnings to print once (v1 buffered-write caveat, missing memory).
  virtual std::vector<std::string> warnings() const = 0;
};

// Creates the cgroup under the v2 mount `root`. Throws std::runtime_error.
std::unique_ptr<IoCgroup> create_v2(const std::string &root, const BlockDevice &dev, const Limits &l);
// Creates the cgroup under the v1 blkio mount `root`.
std::unique_ptr<IoCgroup> create_v1(const std::string &root, const BlockDevice &dev, const Limits &l);

enum class Version { automatic, v1, v2 };
// Picks v2 if its root has the io controller, else v1 blkio, else throws
// "no cgroup I/O controller" with what was found.
std::unique_ptr<IoCgroup> create_cgroup(Version want, const BlockDevice &dev, const Limits &l);

// Reason the v2 path is unavailable on this machine, or empty if it is.
std::string v2_unavailable_reason();

}  // namespace iolimit
