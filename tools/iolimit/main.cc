// iolimit: run a command in a fresh cgroup with I/O limits on one disk.
// See README.md and --help.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "cgroup.h"
#include "device.h"
#include "units.h"

using namespace iolimit;

namespace {

constexpr const char *kHelp = R"(NAME
    iolimit - run a command with its disk I/O limited by a cgroup

SYNOPSIS
    iolimit [--rbps N] [--wbps N] [--riops N] [--wiops N] [--device DEV]
            [--cgroup auto|v1|v2] [-q] [--] COMMAND [ARG...]

DESCRIPTION
    Creates a new cgroup, sets the given limits on one disk, runs COMMAND
    inside it (the command is placed in the cgroup before it execs, so all
    its I/O and its children's is counted), and removes the cgroup when the
    command ends: also when iolimit is interrupted (Ctrl-C, SIGTERM), and
    also if the command left background processes (they are killed).
    At exit it reports the bytes and operations the cgroup did on the disk.

    cgroup v2 (used when its hierarchy has the io controller): the limits go
    to io.max, and the memory controller is enabled in the same cgroup so
    that buffered writes are throttled when the kernel writes them back.

    cgroup v1 (blkio.throttle.*): only direct and synchronous I/O is
    throttled. Buffered writes land in the page cache and are written back
    by the kernel on behalf of the root cgroup, so they are not limited;
    iolimit prints a warning saying so. Use O_DIRECT or O_SYNC writers
    (dd oflag=direct) or cgroup v2.

OPTIONS
    --rbps N     read bytes per second
    --wbps N     written bytes per second
    --riops N    read operations per second
    --wiops N    write operations per second
                 N is a positive integer with an optional suffix K, M, G or
                 T (binary: 1K = 1024, 1M = 1048576; Ki, Mi... also
                 accepted). At least one limit is required.
    --device DEV the disk to limit: a path (its filesystem's disk), a block
                 device node, or MAJ:MIN. A partition is replaced by the
                 disk holding it. Default: the disk of the current
                 directory.
    --cgroup auto|v1|v2
                 which cgroup version to use (default auto: v2 if its io
                 controller is available, else v1 blkio)
    -q, --quiet  no start line and no report
    -h, --help   show this help
    --version    show the version

EXIT STATUS
    The command's exit status, or 128+N if it was killed by signal N.
    1   iolimit failed (no cgroup I/O controller, permission, device)
    2   usage error (bad rate, no limit, no command)
    126 COMMAND is not executable; 127 COMMAND not found

EXAMPLES
    iolimit --wbps 1M -- dd if=/dev/zero of=out bs=1M count=8 oflag=direct
    iolimit --rbps 10M --riops 100 --device /dev/vda -- tar cf /dev/null /usr
)";

void say(const std::string &s) { std::cerr << "iolimit: " << s << "\n"; }

struct Options {
  Limits limits;
  std::string device;
  Version version = Version::automatic;
  bool quiet = false;
  std::vector<std::string> command;
};

Options parse(int argc, char **argv, bool &help, bool &version) {
  Options o;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.empty() || a[0] != '-') break;  // the command starts here
    std::string name = a, value;
    bool inline_value = false;
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      inline_value = true;
    }
    auto need = [&]() -> std::string {
      if (inline_value) return value;
      if (i + 1 >= argc) throw UsageError("option " + name + " needs a value");
      return argv[++i];
    };
    if (name == "-h" || name == "--help")
      help = true;
    else if (name == "--version")
      version = true;
    else if (name == "-q" || name == "--quiet")
      o.quiet = true;
    else if (name == "--rbps")
      o.limits.rbps = parse_rate(need(), name, false);
    else if (name == "--wbps")
      o.limits.wbps = parse_rate(need(), name, false);
    else if (name == "--riops")
      o.limits.riops = parse_rate(need(), name, true);
    else if (name == "--wiops")
      o.limits.wiops = parse_rate(need(), name, true);
    else if (name == "--device") {
      o.device = need();
      if (o.device.empty()) throw UsageError("--device needs a path or MAJ:MIN");
    } else if (name == "--cgroup") {
      std::string v = need();
      if (v == "auto")
        o.version = Version::automatic;
      else if (v == "v1" || v == "1")
        o.version = Version::v1;
      else if (v == "v2" || v == "2")
        o.version = Version::v2;
      else
        throw UsageError("invalid value '" + v + "' for --cgroup (auto, v1 or v2)");
    } else
      throw UsageError("unknown option '" + a + "'");
  }
  if (help || version) return o;
  for (; i < argc; ++i) o.command.emplace_back(argv[i]);
  if (!o.limits.any()) throw UsageError("give at least one limit: --rbps, --wbps, --riops or --wiops");
  if (o.command.empty()) throw UsageError("no command given");
  return o;
}

std::string rate_text(double bytes, double secs) {
  if (secs <= 0) return "-";
  return human_bytes(static_cast<uint64_t>(bytes / secs)) + "/s";
}

// Signals iolimit takes with sigwaitinfo from the start, so that none can
// end it between creating the cgroup and removing it: every catchable one
// except the job-control signals (SIGTSTP, SIGTTIN, SIGTTOU stop iolimit
// together with the command, as a shell job; SIGCONT continues both) and
// the ones ignored by default (SIGWINCH, SIGURG). A fault (SIGSEGV, ...)
// still kills at once: the kernel unblocks a synchronous signal it forces.
sigset_t taken_signals() {
  sigset_t set;
  sigfillset(&set);
  for (int s : {SIGKILL, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT, SIGWINCH, SIGURG}) sigdelset(&set, s);
  return set;
}

// Removes the cgroup when it goes out of scope, also on an exception.
class Removal {
 public:
  explicit Removal(IoCgroup &cg) : cg_(cg) {}
  ~Removal() {
    if (!done_) cg_.remove();
  }
  std::string now() {
    done_ = true;
    return cg_.remove();
  }

 private:
  IoCgroup &cg_;
  bool done_ = false;
};

int run(const Options &o) {
  sigset_t set = taken_signals(), old;
  sigprocmask(SIG_BLOCK, &set, &old);
  BlockDevice dev = resolve_device(o.device.empty() ? "." : o.device);
  std::unique_ptr<IoCgroup> cg = create_cgroup(o.version, dev, o.limits);
  Removal removal(*cg);
  for (const auto &w : cg->warnings()) say(w);
  if (!o.quiet) {
    std::string lim;
    if (o.limits.rbps) lim += " rbps=" + std::to_string(*o.limits.rbps);
    if (o.limits.wbps) lim += " wbps=" + std::to_string(*o.limits.wbps);
    if (o.limits.riops) lim += " riops=" + std::to_string(*o.limits.riops);
    if (o.limits.wiops) lim += " wiops=" + std::to_string(*o.limits.wiops);
    say("limiting " + dev.id() + (dev.name.empty() ? "" : " (" + dev.name + ")") + " with " + cg->kind() + " in " +
        cg->path() + ":" + lim);
  }

  int go[2], err[2];
  if (pipe2(go, O_CLOEXEC) < 0) throw std::runtime_error(std::string("pipe: ") + strerror(errno));
  if (pipe2(err, O_CLOEXEC) < 0) {
    int e = errno;
    close(go[0]);
    close(go[1]);
    throw std::runtime_error(std::string("pipe: ") + strerror(e));
  }
  std::vector<char *> argv;
  for (const auto &a : o.command) argv.push_back(const_cast<char *>(a.c_str()));
  argv.push_back(nullptr);

  std::cerr.flush();
  pid_t child = fork();
  if (child < 0) {
    int e = errno;
    for (int fd : {go[0], go[1], err[0], err[1]}) close(fd);
    throw std::runtime_error(std::string("fork: ") + strerror(e));
  }
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, nullptr);
    close(go[1]);
    close(err[0]);
    char c;
    ssize_t n;
    do n = read(go[0], &c, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) _exit(1);  // parent could not place us in the cgroup
    execvp(argv[0], argv.data());
    int e = errno;
    (void)!write(err[1], &e, sizeof e);
    _exit(e == ENOENT ? 127 : 126);
  }
  close(go[0]);
  close(err[1]);
  try {
    cg->add_process(child);
  } catch (...) {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    close(go[1]);
    close(err[0]);
    throw;
  }
  auto start = std::chrono::steady_clock::now();
  (void)!write(go[1], "g", 1);
  close(go[1]);

  int wstatus = 0;
  while (true) {
    siginfo_t si;
    int s = sigwaitinfo(&set, &si);
    if (s < 0) continue;  // EINTR
    if (s == SIGCHLD) {
      pid_t r = waitpid(child, &wstatus, WNOHANG);
      if (r == child) break;
      continue;
    }
    // Terminal-generated signals (SI_KERNEL) already reached the command's
    // process group, and a SIGPIPE iolimit raised itself (a write to a
    // closed stderr) is its own; any other signal sent to iolimit is passed
    // on to the command.
    bool own = si.si_code == SI_USER && si.si_pid == getpid();
    if (si.si_code != SI_KERNEL && !own) kill(child, s);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  int exec_errno = 0;
  ssize_t n = read(err[0], &exec_errno, sizeof exec_errno);
  close(err[0]);

  IoStats st;
  std::string stat_error;
  try {
    st = cg->stats();
  } catch (const std::exception &e) {
    stat_error = e.what();
  }
  std::size_t leftovers = cg->processes().size();
  std::string rm_error = removal.now();

  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    say(o.command[0] + ": " + (exec_errno == ENOENT ? "command not found" : strerror(exec_errno)));
    if (!rm_error.empty()) say(rm_error);
    return exec_errno == ENOENT ? 127 : 126;
  }
  if (leftovers && !o.quiet) say("killed " + std::to_string(leftovers) + " process(es) the command left in the cgroup");
  if (!o.quiet && !stat_error.empty()) say(stat_error);
  if (!o.quiet && stat_error.empty()) {
    char t[32];
    std::snprintf(t, sizeof t, "%.2f", secs);
    say(dev.id() + ": read " + std::to_string(st.rbytes) + " bytes (" + human_bytes(st.rbytes) + ") in " +
        std::to_string(st.rios) + " ops, wrote " + std::to_string(st.wbytes) + " bytes (" + human_bytes(st.wbytes) +
        ") in " + std::to_string(st.wios) + " ops; " + t + " s (read " +
        rate_text(static_cast<double>(st.rbytes), secs) + ", write " + rate_text(static_cast<double>(st.wbytes), secs) +
        ")");
  }
  if (!rm_error.empty()) say(rm_error);
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return 1;
}

// Under a tight `ulimit -v` not even the exception for a failed allocation
// can be allocated (std::terminate, SIGABRT): say so and exit instead.
[[noreturn]] void out_of_memory() {
  static const char msg[] = "iolimit: out of memory\n";
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
  _exit(1);
}

// Opens /dev/null on any of descriptors 0, 1, 2 that is closed, so that no
// cgroup file iolimit opens lands there (a message would be written into it).
bool ensure_std_fds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    int nfd = open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY);
    if (nfd != fd) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  if (!ensure_std_fds()) return 1;
  std::set_new_handler(out_of_memory);
  try {
    bool help = false, version = false;
    Options o;
    try {
      o = parse(argc, argv, help, version);
    } catch (const UsageError &e) {
      say(e.what());
      std::cerr << "Try 'iolimit --help' for more information.\n";
      return 2;
    }
    if (help) {
      std::cout << kHelp;
      return 0;
    }
    if (version) {
      std::cout << "iolimit 0.1.0\n";
      return 0;
    }
    return run(o);
  } catch (const std::bad_alloc &) {
    say("out of memory");
    return 1;
  } catch (const std::exception &e) {
    say(e.what());
    return 1;
  }
}
