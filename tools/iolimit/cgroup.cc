#include "cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace iolimit {
namespace {

// Throws when the file cannot be opened (EMFILE under `ulimit -n`, ENOENT,
// ...): an empty text would read as "no controller" or "no mount".
std::string read_file(const std::string &path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot read " + path + ": " + strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Writes `value` with one write(2), as cgroup files require. Returns 0 or errno.
int write_file(const std::string &path, const std::string &value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n = write(fd, value.data(), value.size());
  int e = n < 0 ? errno : 0;
  close(fd);
  return e;
}

void write_or_throw(const std::string &path, const std::string &value, const std::string &hint = "") {
  if (int e = write_file(path, value)) {
    std::string msg = "cannot write '" + value + "' to " + path + ": " + strerror(e);
    if (e == ENODEV)
      msg += " (not a whole disk, or the device is gone)";
    else if (e == EBUSY)
      msg += " (cgroup v2 no-internal-process rule: the parent holds processes)";
    else if (e == EACCES || e == EPERM)
      msg += " (run as root or use a delegated cgroup)";
    if (!hint.empty()) msg += " " + hint;
    throw std::runtime_error(msg);
  }
}

std::string unique_name() {
  static std::atomic<int> counter{0};
  return "iolimit-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

std::string make_leaf(const std::string &root) {
  std::string path = root + "/" + unique_name();
  if (mkdir(path.c_str(), 0755) != 0) {
    int e = errno;
    std::string msg = "cannot create cgroup " + path + ": " + strerror(e);
    if (e == EACCES || e == EPERM || e == EROFS) msg += " (run as root or use a delegated cgroup)";
    throw std::runtime_error(msg);
  }
  return path;
}

std::vector<pid_t> read_pids(const std::string &file) {
  std::vector<pid_t> out;
  std::ifstream f(file);
  long p;
  while (f >> p) out.push_back(static_cast<pid_t>(p));
  return out;
}

// Shared teardown: kill what is left (cgroup.kill on v2 5.14+, else SIGKILL
// each pid until the list stays empty), then rmdir with retries.
std::string teardown(const std::string &path, const std::string &procs_file, bool v2) {
  using namespace std::chrono;
  auto deadline = steady_clock::now() + seconds(5);
  bool killed_via_file = false;
  while (true) {
    auto pids = read_pids(procs_file);
    if (pids.empty()) break;
    if (steady_clock::now() > deadline)
      return "cgroup " + path + " still has " + std::to_string(pids.size()) + " process(es); left in place";
    if (v2 && !killed_via_file && write_file(path + "/cgroup.kill", "1") == 0)
      killed_via_file = true;
    else
      for (pid_t p : pids) kill(p, SIGKILL);
    std::this_thread::sleep_for(milliseconds(20));
  }
  for (int i = 0; i < 250; ++i) {  // a dying task may keep the cgroup busy briefly
    if (rmdir(path.c_str()) == 0 || errno == ENOENT) return "";
    if (errno != EBUSY) break;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return "cannot remove cgroup " + path + ": " + strerror(errno);
}

class V2 final : public IoCgroup {
 public:
  V2(std::string root, const BlockDevice &dev, const Limits &l) : dev_(dev) {
    std::string controllers = read_file(root + "/cgroup.controllers");
    if (!has_controller(controllers, "io"))
      throw std::runtime_error("cgroup v2 at " + root + " has no io controller (available: " +
                               (controllers.empty() ? std::string("none") : trim(controllers)) + ")");
    // Top-down: io (and memory, for writeback) must be enabled in the
    // parent's subtree_control before the leaf gets io.max.
    write_or_throw(root + "/cgroup.subtree_control", "+io");
    if (has_controller(controllers, "memory")) {
      write_or_throw(root + "/cgroup.subtree_control", "+memory");
      memory_ = true;
    }
    path_ = make_leaf(root);
    try {
      write_or_throw(path_ + "/io.max", io_max_line(dev, l));
    } catch (...) {
      rmdir(path_.c_str());
      throw;
    }
  }
  std::string kind() const override { return memory_ ? "cgroup v2 (io.max, memory)" : "cgroup v2 (io.max)"; }
  const std::string &path() const override { return path_; }
  void add_process(pid_t pid) override { write_or_throw(path_ + "/cgroup.procs", std::to_string(pid)); }
  IoStats stats() const override { return parse_io_stat(read_file(path_ + "/io.stat"), dev_); }
  std::vector<pid_t> processes() const override { return read_pids(path_ + "/cgroup.procs"); }
  std::string remove() override { return teardown(path_, path_ + "/cgroup.procs", true); }
  std::vector<std::string> warnings() const override {
    if (memory_) return {};
    return {
        "warning: the memory controller is not available on cgroup v2 here, so buffered writes "
        "are not throttled; only direct and synchronous I/O is"};
  }

 private:
  static std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }
  BlockDevice dev_;
  std::string path_;
  bool memory_ = false;
};

class V1 final : public IoCgroup {
 public:
  V1(const std::string &root, const BlockDevice &dev, const Limits &l) : dev_(dev) {
    path_ = make_leaf(root);
    try {
      std::string id = dev.id() + " ";
      if (l.rbps) write_or_throw(path_ + "/blkio.throttle.read_bps_device", id + std::to_string(*l.rbps));
      if (l.wbps) write_or_throw(path_ + "/blkio.throttle.write_bps_device", id + std::to_string(*l.wbps));
      if (l.riops) write_or_throw(path_ + "/blkio.throttle.read_iops_device", id + std::to_string(*l.riops));
      if (l.wiops) write_or_throw(path_ + "/blkio.throttle.write_iops_device", id + std::to_string(*l.wiops));
    } catch (...) {
      rmdir(path_.c_str());
      throw;
    }
  }
  std::string kind() const override { return "cgroup v1 (blkio.throttle)"; }
  const std::string &path() const override { return path_; }
  void add_process(pid_t pid) override { write_or_throw(path_ + "/cgroup.procs", std::to_string(pid)); }
  IoStats stats() const override {
    return parse_blkio_throttle(read_file(path_ + "/blkio.throttle.io_service_bytes"),
                                read_file(path_ + "/blkio.throttle.io_serviced"), dev_);
  }
  std::vector<pid_t> processes() const override { return read_pids(path_ + "/cgroup.procs"); }
  std::string remove() override { return teardown(path_, path_ + "/cgroup.procs", false); }
  std::vector<std::string> warnings() const override {
    return {
        "warning: cgroup v1 blkio throttles only direct and synchronous I/O; buffered writes are "
        "flushed by writeback, which v1 charges to the root cgroup, so they are not limited"};
  }

 private:
  BlockDevice dev_;
  std::string path_;
};

}  // namespace

bool has_controller(const std::string &controllers, const std::string &name) {
  std::istringstream ss(controllers);
  std::string w;
  while (ss >> w)
    if (w == name) return true;
  return false;
}

CgroupMounts parse_mountinfo(const std::string &text) {
  CgroupMounts m;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    auto sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream pre(line.substr(0, sep)), post(line.substr(sep + 3));
    std::string id, parent, devno, root, mountpoint, fstype, source, opts;
    pre >> id >> parent >> devno >> root >> mountpoint;
    post >> fstype >> source >> opts;
    if (fstype == "cgroup2" && m.v2.empty()) m.v2 = mountpoint;
    if (fstype == "cgroup" && m.v1_blkio.empty()) {
      std::istringstream os(opts);
      std::string o;
      while (std::getline(os, o, ','))
        if (o == "blkio") m.v1_blkio = mountpoint;
    }
  }
  return m;
}

CgroupMounts find_cgroup_mounts() { return parse_mountinfo(read_file("/proc/self/mountinfo")); }

IoStats parse_io_stat(const std::string &text, const BlockDevice &dev) {
  IoStats s;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream ws(line);
    std::string id, kv;
    ws >> id;
    if (id != dev.id()) continue;
    while (ws >> kv) {
      auto eq = kv.find('=');
      if (eq == std::string::npos) continue;
      std::string k = kv.substr(0, eq);
      uint64_t v = std::strtoull(kv.c_str() + eq + 1, nullptr, 10);
      if (k == "rbytes")
        s.rbytes = v;
      else if (k == "wbytes")
        s.wbytes = v;
      else if (k == "rios")
        s.rios = v;
      else if (k == "wios")
        s.wios = v;
    }
  }
  return s;
}

IoStats parse_blkio_throttle(const std::string &bytes, const std::string &ios, const BlockDevice &dev) {
  IoStats s;
  auto scan = [&](const std::string &text, uint64_t &read, uint64_t &write) {
    std::istringstream lines(text);
    std::string id, op;
    uint64_t v;
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream ws(line);
      if (!(ws >> id >> op >> v) || id != dev.id()) continue;
      if (op == "Read")
        read = v;
      else if (op == "Write")
        write = v;
    }
  };
  scan(bytes, s.rbytes, s.wbytes);
  scan(ios, s.rios, s.wios);
  return s;
}

std::string io_max_line(const BlockDevice &dev, const Limits &l) {
  std::string s = dev.id();
  if (l.rbps) s += " rbps=" + std::to_string(*l.rbps);
  if (l.wbps) s += " wbps=" + std::to_string(*l.wbps);
  if (l.riops) s += " riops=" + std::to_string(*l.riops);
  if (l.wiops) s += " wiops=" + std::to_string(*l.wiops);
  return s;
}

std::unique_ptr<IoCgroup> create_v2(const std::string &root, const BlockDevice &dev, const Limits &l) {
  return std::make_unique<V2>(root, dev, l);
}

std::unique_ptr<IoCgroup> create_v1(const std::string &root, const BlockDevice &dev, const Limits &l) {
  return std::make_unique<V1>(root, dev, l);
}

std::string v2_unavailable_reason() {
  CgroupMounts m = find_cgroup_mounts();
  if (m.v2.empty()) return "no cgroup2 filesystem is mounted";
  std::string c = read_file(m.v2 + "/cgroup.controllers");
  if (!has_controller(c, "io")) {
    while (!c.empty() && (c.back() == '\n' || c.back() == ' ')) c.pop_back();
    return "the cgroup2 hierarchy at " + m.v2 +
           " has no io controller (its controllers: " + (c.empty() ? std::string("none") : c) +
           "; io is bound to a cgroup v1 hierarchy)";
  }
  return "";
}

std::unique_ptr<IoCgroup> create_cgroup(Version want, const BlockDevice &dev, const Limits &l) {
  CgroupMounts m = find_cgroup_mounts();
  std::string v2_reason = v2_unavailable_reason();
  if (want == Version::v2 || (want == Version::automatic && v2_reason.empty())) {
    if (!v2_reason.empty()) throw std::runtime_error("cannot use cgroup v2: " + v2_reason);
    return create_v2(m.v2, dev, l);
  }
  if (m.v1_blkio.empty()) {
    if (want == Version::v1) throw std::runtime_error("cannot use cgroup v1: no blkio hierarchy is mounted");
    throw std::runtime_error("no cgroup I/O controller: " + v2_reason +
                             ", and no cgroup v1 blkio hierarchy is mounted");
  }
  return create_v1(m.v1_blkio, dev, l);
}

}  // namespace iolimit
