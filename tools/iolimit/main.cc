// iolimit: run a command in a fresh cgroup with I/O limits on one disk.
// See README.md and --help.
#include <getopt.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <new>
#include <string>
#include <system_error>
#include <vector>

#include "cgroup.h"
#include "common/cli.h"
#include "common/diag.h"
#include "common/spawn.h"
#include "common/std_streams.h"
#include "common/units.h"
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
    command ends: also when iolimit is interrupted, and also if the command
    left background processes (they are killed). Every catchable signal
    sent to iolimit (SIGTERM, SIGHUP, SIGUSR1, ...) is passed on to
    COMMAND; iolimit ends when COMMAND does. Ctrl-Z stops both, as one
    shell job. Only SIGKILL to iolimit leaves the cgroup behind.
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

void say(const std::string &s) { toolkit::warn(s); }

struct Options {
  Limits limits;
  std::string device;
  Version version = Version::automatic;
  bool quiet = false;
  bool help = false;
  bool print_version = false;
  std::vector<std::string> command;
};

enum LongOnly { kRbps = 256, kWbps, kRiops, kWiops, kDevice, kCgroup, kVersion };

const struct option kLongOptions[] = {
    {"rbps", required_argument, nullptr, kRbps},
    {"wbps", required_argument, nullptr, kWbps},
    {"riops", required_argument, nullptr, kRiops},
    {"wiops", required_argument, nullptr, kWiops},
    {"device", required_argument, nullptr, kDevice},
    {"cgroup", required_argument, nullptr, kCgroup},
    {"quiet", no_argument, nullptr, 'q'},
    {"help", no_argument, nullptr, 'h'},
    {"version", no_argument, nullptr, kVersion},
    {nullptr, 0, nullptr, 0},
};

// Throws toolkit::UsageError.
Options parse(int argc, char **argv) {
  Options o;
  // '+': options end at COMMAND, whose own options stay its own.
  int first = toolkit::parse_options(argc, argv, "+qh", kLongOptions, [&](int c, const char *arg) {
    switch (c) {
      case 'q':
        o.quiet = true;
        break;
      case 'h':
        o.help = true;
        break;
      case kVersion:
        o.print_version = true;
        break;
      case kRbps:
        o.limits.rbps = parse_rate(arg, "--rbps", false);
        break;
      case kWbps:
        o.limits.wbps = parse_rate(arg, "--wbps", false);
        break;
      case kRiops:
        o.limits.riops = parse_rate(arg, "--riops", true);
        break;
      case kWiops:
        o.limits.wiops = parse_rate(arg, "--wiops", true);
        break;
      case kDevice:
        o.device = arg;
        if (o.device.empty()) throw toolkit::UsageError("--device needs a path or MAJ:MIN");
        break;
      case kCgroup: {
        std::string v = arg;
        if (v == "auto")
          o.version = Version::automatic;
        else if (v == "v1" || v == "1")
          o.version = Version::v1;
        else if (v == "v2" || v == "2")
          o.version = Version::v2;
        else
          throw toolkit::UsageError("invalid value " + toolkit::quote(v, 40) + " for --cgroup (auto, v1 or v2)");
        break;
      }
    }
    return true;
  });
  if (o.help || o.print_version) return o;
  for (int i = first; i < argc; ++i) o.command.emplace_back(argv[i]);
  if (!o.limits.any()) throw toolkit::UsageError("give at least one limit: --rbps, --wbps, --riops or --wiops");
  if (o.command.empty()) throw toolkit::UsageError("no command given");
  return o;
}

std::string rate_text(double bytes, double secs) {
  if (secs <= 0) return "-";
  return toolkit::human_bytes(static_cast<uint64_t>(bytes / secs)) + "/s";
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

  // The child places itself in the cgroup and gets the original signal
  // mask back before it execs: no I/O of the command escapes the limit.
  toolkit::SpawnOptions spawn_options;
  spawn_options.setup = [&cg, &old] {
    try {
      cg->add_process(getpid());
    } catch (const std::exception &e) {
      return std::string(e.what());
    }
    sigprocmask(SIG_SETMASK, &old, nullptr);
    return std::string();
  };
  toolkit::Child child_proc = toolkit::spawn(o.command, spawn_options);
  pid_t child = child_proc.pid();
  toolkit::ExecResult started = child_proc.wait_exec();
  if (started.stage != toolkit::ExecResult::Stage::started) {
    waitpid(child, nullptr, 0);
    std::string rm_error = removal.now();
    if (started.stage == toolkit::ExecResult::Stage::setup_failed)
      say(started.text);
    else
      say(toolkit::describe(started, o.command[0]));
    if (!rm_error.empty()) say(rm_error);
    return toolkit::exit_status_of(started);
  }
  auto start = std::chrono::steady_clock::now();

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

  IoStats st;
  std::string stat_error;
  try {
    st = cg->stats();
  } catch (const std::exception &e) {
    stat_error = e.what();
  }
  std::size_t leftovers = cg->processes().size();
  std::string rm_error = removal.now();

  if (leftovers && !o.quiet) say("killed " + std::to_string(leftovers) + " process(es) the command left in the cgroup");
  if (!o.quiet && !stat_error.empty()) say(stat_error);
  if (!o.quiet && stat_error.empty()) {
    char t[32];
    std::snprintf(t, sizeof t, "%.2f", secs);
    say(dev.id() + ": read " + std::to_string(st.rbytes) + " bytes (" + toolkit::human_bytes(st.rbytes) + ") in " +
        std::to_string(st.rios) + " ops, wrote " + std::to_string(st.wbytes) + " bytes (" +
        toolkit::human_bytes(st.wbytes) + ") in " + std::to_string(st.wios) + " ops; " + t + " s (read " +
        rate_text(static_cast<double>(st.rbytes), secs) + ", write " + rate_text(static_cast<double>(st.wbytes), secs) +
        ")");
  }
  if (!rm_error.empty()) say(rm_error);
  return toolkit::exit_status_of(wstatus);
}

// Under a tight `ulimit -v` not even the exception for a failed allocation
// can be allocated (std::terminate, SIGABRT): say so and exit instead.
[[noreturn]] void out_of_memory() {
  static const char msg[] = "iolimit: out of memory\n";
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
  _exit(1);
}

}  // namespace

int main(int argc, char **argv) {
  toolkit::set_program_name("iolimit");
  // A closed 0, 1 or 2 gets /dev/null (failing like a closed descriptor),
  // so no cgroup file iolimit opens lands there and gets its messages.
  if (!toolkit::ensure_std_fds()) return 1;
  std::set_new_handler(out_of_memory);
  try {
    Options o;
    try {
      o = parse(argc, argv);
    } catch (const toolkit::UsageError &e) {
      return toolkit::usage_error(e.what());
    }
    if (o.help) return toolkit::write_stdout(kHelp) ? 0 : 1;
    if (o.print_version) return toolkit::print_version();
    return run(o);
  } catch (const std::exception &e) {
    say(e.what());
    return 1;
  }
}
