// taskdelays: per-task delay accounting from the kernel's taskstats
// interface (a getdelays rewrite on libnl-genl-3). See README.md and --help.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "cli.h"
#include "common/cli.h"
#include "common/diag.h"
#include "common/spawn.h"
#include "common/std_streams.h"
#include "output.h"
#include "report.h"
#include "taskstats_client.h"

namespace td = taskdelays;

namespace {

constexpr const char *kHelp = R"(NAME
    taskdelays - show per-task delay accounting from the kernel's taskstats

SYNOPSIS
    taskdelays [-d] [-i] [-q] [--json] [-o FILE] [--timeout SEC] -p PID
    taskdelays [-d] [-q] [--json] [-o FILE] [--timeout SEC] -t TGID
    taskdelays [-d] [-i] [-q] [--json] [-o FILE] -c COMMAND [ARG...]
    taskdelays [-d] [-i] [-q] [--json] [-o FILE] -l [-m CPUMASK] [-n COUNT] [-r BYTES]

DESCRIPTION
    Asks the kernel (generic netlink family TASKSTATS, through libnl-genl-3)
    how long a task waited for each resource: CPU (runnable but not running),
    block I/O, swap-in, memory reclaim, thrashing, memory compaction,
    write-protect copy and IRQ/softirq time. For each category it prints the
    count, total, average and, on kernels that report them (taskstats v16+),
    the largest and smallest single delay, in human units.

    Replies are decoded by their version and length, so the tool works on
    kernels older and newer than the header it was built with (v15's
    mid-struct layout included). Fields the kernel does not send are shown
    as "-" (text) or null (JSON).

OPTIONS
    -p PID       one thread (a pid or a thread id)
    -t TGID      a whole process: the kernel sums its live threads and the
                 ones that already exited (I/O fields are not summed)
    -c COMMAND [ARG...]
                 run COMMAND (looked up in PATH), report its delays when it
                 exits, and exit with its exit status (128+N if killed by
                 signal N; 127 not found; 126 not executable). Everything
                 after -c (and an optional --) belongs to the command.
                 SIGTERM, SIGHUP, SIGALRM, SIGUSR1 and SIGUSR2 sent to
                 taskdelays are passed on to the command.
    -l           listen for exiting tasks and print one record per task
                 (and one per thread group when its last thread exits)
    -m CPUMASK   with -l: CPUs to listen on, as a list like "0-3,5"
                 (default: all CPUs)
    -n COUNT     with -l: stop after COUNT records
    -r BYTES     with -l: socket receive buffer size (lost records are
                 counted and reported)
    -d           print delay statistics (always on; accepted for getdelays
                 compatibility)
    -i           print I/O accounting (bytes read/written/cancelled, read
                 and write syscalls)
    -q           print context switches (voluntary, involuntary)
    --json       one JSON object per record (one line each)
    -o FILE      write the report to FILE instead of standard output; FILE
                 is written only once there is something to write (a failed
                 query leaves it as it was) and replaced whole; with -l it
                 is opened at the first record
    --timeout SEC
                 give up when the kernel does not answer within SEC
                 seconds (default 5)
    -h, --help   show this help
    --version    show the version

DELAY ACCOUNTING
    The kernel collects delays only while kernel.task_delayacct is 1 (it is
    off by default since Linux 5.14), and only for tasks started after it
    was switched on. When it is off, taskdelays still prints the data and
    warns. Enable it with:  sysctl kernel.task_delayacct=1

EXIT STATUS
    0  success; with -c, the command's exit status
    1  runtime error: no privilege (root or CAP_NET_ADMIN is needed), no
       such process, taskstats missing from the kernel, netlink timeout
    2  usage error (invalid pid, CPU mask or option combination)

EXAMPLES
    taskdelays -p 1234
    taskdelays -t 1234 -q --json
    taskdelays -i -c dd if=/dev/zero of=/tmp/f bs=1M count=100 oflag=direct
    taskdelays -l -m 0-1 -n 10
)";

using toolkit::warn;

// Returns the kernel.task_delayacct value: 1 on, 0 off, -1 missing, or
// -errno when it could not be read (e.g. -EMFILE under a small ulimit -n).
int delayacct_state() {
  int fd = open("/proc/sys/kernel/task_delayacct", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? -1 : -errno;
  char buf[16] = {};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  int err = n < 0 ? errno : 0;
  close(fd);
  if (n < 0) return -err;
  return buf[0] == '0' ? 0 : buf[0] == '1' ? 1 : -EINVAL;
}

void warn_if_delayacct_off() {
  int s = delayacct_state();
  if (s == 0)
    warn(
        "warning: delay accounting is off (kernel.task_delayacct=0), so delay counts and totals "
        "read 0. Enable it with 'sysctl kernel.task_delayacct=1'; only tasks started after that "
        "are counted.");
  else if (s == -1)
    warn(
        "warning: /proc/sys/kernel/task_delayacct is missing; the kernel may lack "
        "CONFIG_TASK_DELAY_ACCT, in which case all delays read 0.");
  else if (s < 0)
    warn("warning: cannot read /proc/sys/kernel/task_delayacct (" + toolkit::errno_text(-s) +
         "): delays read 0 if delay accounting is off");
}

std::string read_comm(uint32_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
  std::string s;
  std::getline(f, s);
  return s;
}

std::string render(const td::TaskRecord &rec, const std::string &hint, const td::ReportOptions &ro) {
  auto scope = rec.is_group ? td::Scope::group : td::Scope::thread;
  if (ro.json) return td::render_json(rec.stats, scope, rec.id, hint, ro) + "\n";
  return td::render_text(rec.stats, scope, rec.id, hint, ro);
}

volatile sig_atomic_t g_child = 0;
void forward_to_child(int sig) {
  if (g_child > 0) kill(static_cast<pid_t>(g_child), sig);
}

// Signals that would end taskdelays while the command runs are passed on to
// the command, so that it is not left running unwatched; the report then
// says how it ended. SIGINT and SIGQUIT come from the terminal to the whole
// process group: taskdelays ignores them, like system().
const int kForwarded[] = {SIGTERM, SIGHUP, SIGALRM, SIGUSR1, SIGUSR2};

// -c: runs the command, queries the zombie before reaping it, reports.
int run_command(const td::Options &o) {
  td::TaskstatsClient client(o.timeout_ms);
  // Fail before running anything if we may not query at all.
  client.get(static_cast<uint32_t>(getpid()), false);
  warn_if_delayacct_off();

  struct sigaction ign {
  }, fwd{}, old_int{}, old_quit{}, old_fwd[std::size(kForwarded)];
  ign.sa_handler = SIG_IGN;
  fwd.sa_handler = forward_to_child;
  fwd.sa_flags = SA_RESTART;
  sigaction(SIGINT, &ign, &old_int);
  sigaction(SIGQUIT, &ign, &old_quit);
  for (size_t i = 0; i < std::size(kForwarded); ++i) sigaction(kForwarded[i], &fwd, &old_fwd[i]);
  auto restore = [&] {
    g_child = 0;
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGQUIT, &old_quit, nullptr);
    for (size_t i = 0; i < std::size(kForwarded); ++i) sigaction(kForwarded[i], &old_fwd[i], nullptr);
  };

  toolkit::SpawnOptions so;
  so.setup = [&] {  // the command gets the dispositions taskdelays was started with
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGQUIT, &old_quit, nullptr);
    for (size_t i = 0; i < std::size(kForwarded); ++i) sigaction(kForwarded[i], &old_fwd[i], nullptr);
    return std::string();
  };
  std::optional<toolkit::Child> child;
  try {
    child.emplace(toolkit::spawn(o.command, so));
  } catch (...) {
    restore();
    throw;
  }
  pid_t pid = child->pid();
  g_child = pid;
  toolkit::ExecResult started = child->wait_exec();

  // Wait for the exit but leave the zombie in place: its statistics vanish
  // once it is reaped.
  siginfo_t si{};
  while (waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
  }
  g_child = 0;  // about to be reaped: never signal that pid again
  std::string error;
  td::TaskRecord rec;
  bool have = false;
  if (started.stage == toolkit::ExecResult::Stage::started) {
    try {
      rec = client.get(static_cast<uint32_t>(pid), false);
      have = true;
    } catch (const td::TaskstatsError &e) {
      error = td::describe(e);
    }
  }
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  restore();
  if (started.stage != toolkit::ExecResult::Stage::started) {
    warn(toolkit::describe(started, o.command[0]));
    return toolkit::exit_status_of(started);
  }
  int status = toolkit::exit_status_of(wstatus);
  if (!have) {
    warn("cannot read the command's statistics: " + error);
    return status ? status : 1;
  }
  std::string text = render(rec, o.command[0], o.report);
  if (!o.report.json) {
    if (WIFSIGNALED(wstatus))
      text += "  command killed by signal " + std::to_string(WTERMSIG(wstatus)) + " (" + strsignal(WTERMSIG(wstatus)) +
              ")\n";
    else
      text += "  command exit status " + std::to_string(status) + "\n";
  }
  td::deliver(o.output, text);
  return status;
}

volatile sig_atomic_t g_stop = 0;
void on_stop(int) { g_stop = 1; }

// -l: prints exit records until interrupted or -n COUNT is reached.
int listen(const td::Options &o) {
  td::StreamOutput out(o.output);
  td::TaskstatsClient client(o.timeout_ms);
  struct sigaction sa {};
  sa.sa_handler = on_stop;  // no SA_RESTART: poll returns EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  client.register_cpumask(o.cpumask, o.rcvbuf);
  warn_if_delayacct_off();
  // On stderr, so the JSON stream on stdout stays clean; scripts wait for it.
  warn("listening for exiting tasks on CPUs " + o.cpumask);
  long seen = 0, lost = 0;
  int rc = 0;
  try {
    while (!g_stop && (o.max_events == 0 || seen < o.max_events)) {
      try {
        lost += client.receive_exits(
            [&](const td::TaskRecord &r) {
              if (o.max_events && seen >= o.max_events) return;
              ++seen;
              out.write(render(r, "", o.report));
            },
            -1);
      } catch (const td::TaskstatsError &e) {
        if (e.kind != td::ErrorKind::interrupted) throw;
      }
    }
  } catch (const td::ReportNotWritten &) {
    rc = 1;  // already said
  } catch (const std::exception &e) {
    warn(e.what());
    rc = 1;
  }
  client.deregister_cpumask(o.cpumask);
  if (lost)
    warn("warning: the kernel dropped exit records " + std::to_string(lost) +
         " time(s) (receive buffer overrun; raise it with -r)");
  return rc;
}

int query(const td::Options &o) {
  td::TaskstatsClient client(o.timeout_ms);
  bool group = o.mode == td::Mode::tgid;
  td::TaskRecord rec = client.get(o.id, group);
  warn_if_delayacct_off();
  td::deliver(o.output, render(rec, read_comm(o.id), o.report));
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  toolkit::set_program_name("taskdelays");
  if (!toolkit::ensure_std_fds()) return 1;
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + std::max(argc, 0));
  td::Options o;
  try {
    o = td::parse_args(args);
  } catch (const toolkit::UsageError &e) {
    return toolkit::usage_error(e.what());
  } catch (const std::bad_alloc &) {
    warn("memory exhausted");
    return 1;
  }
  if (o.mode == td::Mode::help) return toolkit::write_stdout(kHelp) ? 0 : 1;
  if (o.mode == td::Mode::version) return toolkit::print_version();
  signal(SIGPIPE, SIG_DFL);
  try {
    switch (o.mode) {
      case td::Mode::command:
        return run_command(o);
      case td::Mode::listen:
        return listen(o);
      default:
        return query(o);
    }
  } catch (const td::TaskstatsError &e) {
    warn(td::describe(e));
  } catch (const td::ReportNotWritten &) {
  } catch (const std::bad_alloc &) {
    warn("memory exhausted");
  } catch (const std::exception &e) {
    warn(e.what());
  }
  return 1;
}
