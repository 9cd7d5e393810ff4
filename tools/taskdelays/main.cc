// taskdelays: per-task delay accounting from the kernel's taskstats
// interface (a getdelays rewrite on libnl-genl-3). See README.md and --help.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "cli.h"
#include "report.h"
#include "taskstats_client.h"

namespace td = taskdelays;

namespace {

constexpr const char* kHelp = R"(NAME
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
    -o FILE      write the report to FILE instead of standard output
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

void warn(const std::string& msg) { std::cerr << "taskdelays: " << msg << "\n"; }

// Returns the kernel.task_delayacct value: 1 on, 0 off, -1 unknown.
int delayacct_state() {
  std::ifstream f("/proc/sys/kernel/task_delayacct");
  int v = -1;
  if (!(f >> v)) return -1;
  return v;
}

void warn_if_delayacct_off() {
  int s = delayacct_state();
  if (s == 0)
    warn("warning: delay accounting is off (kernel.task_delayacct=0), so delay counts and totals "
         "read 0. Enable it with 'sysctl kernel.task_delayacct=1'; only tasks started after that "
         "are counted.");
  else if (s < 0)
    warn("warning: /proc/sys/kernel/task_delayacct is missing; the kernel may lack "
         "CONFIG_TASK_DELAY_ACCT, in which case all delays read 0.");
}

std::string read_comm(uint32_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
  std::string s;
  std::getline(f, s);
  return s;
}

// Writes the report to stdout or to -o FILE.
class Output {
 public:
  explicit Output(const std::string& path) {
    if (path.empty()) return;
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot open '" + path + "' for writing: " + strerror(errno));
    file_ = fdopen(fd, "w");
  }
  ~Output() {
    if (file_) fclose(file_);
  }
  void write(const std::string& s) {
    FILE* f = file_ ? file_ : stdout;
    if (fputs(s.c_str(), f) < 0 || fflush(f) != 0)
      throw std::runtime_error(std::string("write error: ") + strerror(errno));
  }

 private:
  FILE* file_ = nullptr;
};

std::string render(const td::TaskRecord& rec, const std::string& hint, const td::ReportOptions& ro) {
  auto scope = rec.is_group ? td::Scope::group : td::Scope::thread;
  if (ro.json) return td::render_json(rec.stats, scope, rec.id, hint, ro) + "\n";
  return td::render_text(rec.stats, scope, rec.id, hint, ro);
}

int exit_status_of(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return 1;
}

// -c: runs the command, queries the zombie before reaping it, reports.
int run_command(const td::Options& o, Output& out) {
  td::TaskstatsClient client(o.timeout_ms);
  // Fail before running anything if we may not query at all.
  client.get(static_cast<uint32_t>(getpid()), false);
  warn_if_delayacct_off();

  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) < 0) throw std::runtime_error(std::string("pipe: ") + strerror(errno));
  std::vector<char*> argv;
  for (const auto& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  // Like system(): the command gets Ctrl-C, we stay to report.
  struct sigaction ign {}, old_int{}, old_quit{};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ign, &old_int);
  sigaction(SIGQUIT, &ign, &old_quit);

  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGQUIT, &old_quit, nullptr);
    close(errpipe[0]);
    execvp(argv[0], argv.data());
    int e = errno;
    (void)!write(errpipe[1], &e, sizeof e);
    _exit(e == ENOENT ? 127 : 126);
  }
  close(errpipe[1]);
  int exec_errno = 0;
  ssize_t n;
  do n = read(errpipe[0], &exec_errno, sizeof exec_errno);
  while (n < 0 && errno == EINTR);
  close(errpipe[0]);

  // Wait for the exit but leave the zombie in place: its statistics vanish
  // once it is reaped.
  siginfo_t si{};
  while (waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
  }
  std::string error;
  td::TaskRecord rec;
  bool have = false;
  if (n <= 0) {
    try {
      rec = client.get(static_cast<uint32_t>(pid), false);
      have = true;
    } catch (const td::TaskstatsError& e) {
      error = td::describe(e);
    }
  }
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGQUIT, &old_quit, nullptr);
  if (n > 0) {
    warn(o.command[0] + ": " + (exec_errno == ENOENT ? "command not found" : strerror(exec_errno)));
    return exec_errno == ENOENT ? 127 : 126;
  }
  int status = exit_status_of(wstatus);
  if (!have) {
    warn("cannot read the command's statistics: " + error);
    return status ? status : 1;
  }
  out.write(render(rec, o.command[0], o.report));
  if (!o.report.json) {
    if (WIFSIGNALED(wstatus))
      out.write("  command killed by signal " + std::to_string(WTERMSIG(wstatus)) + " (" +
                strsignal(WTERMSIG(wstatus)) + ")\n");
    else
      out.write("  command exit status " + std::to_string(status) + "\n");
  }
  return status;
}

volatile sig_atomic_t g_stop = 0;
void on_stop(int) { g_stop = 1; }

// -l: prints exit records until interrupted or -n COUNT is reached.
int listen(const td::Options& o, Output& out) {
  td::TaskstatsClient client(o.timeout_ms);
  struct sigaction sa {};
  sa.sa_handler = on_stop;  // no SA_RESTART: poll returns EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  client.register_cpumask(o.cpumask, o.rcvbuf);
  warn_if_delayacct_off();
  // On stderr, so the JSON stream on stdout stays clean; scripts wait for it.
  std::cerr << "taskdelays: listening for exiting tasks on CPUs " << o.cpumask << std::endl;
  long seen = 0, lost = 0;
  int rc = 0;
  try {
    while (!g_stop && (o.max_events == 0 || seen < o.max_events)) {
      try {
        lost += client.receive_exits(
            [&](const td::TaskRecord& r) {
              if (o.max_events && seen >= o.max_events) return;
              ++seen;
              out.write(render(r, "", o.report));
            },
            -1);
      } catch (const td::TaskstatsError& e) {
        if (e.kind != td::ErrorKind::interrupted) throw;
      }
    }
  } catch (const std::exception& e) {
    warn(e.what());
    rc = 1;
  }
  client.deregister_cpumask(o.cpumask);
  if (lost) warn("warning: the kernel dropped exit records " + std::to_string(lost) +
                 " time(s) (receive buffer overrun; raise it with -r)");
  return rc;
}

int query(const td::Options& o, Output& out) {
  td::TaskstatsClient client(o.timeout_ms);
  bool group = o.mode == td::Mode::tgid;
  td::TaskRecord rec = client.get(o.id, group);
  warn_if_delayacct_off();
  out.write(render(rec, read_comm(o.id), o.report));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  td::Options o;
  try {
    o = td::parse_args(args);
  } catch (const td::UsageError& e) {
    warn(e.what());
    std::cerr << "Try 'taskdelays --help' for more information.\n";
    return 2;
  }
  if (o.mode == td::Mode::help) {
    std::cout << kHelp;
    return 0;
  }
  if (o.mode == td::Mode::version) {
    std::cout << "taskdelays 0.1.0\n";
    return 0;
  }
  signal(SIGPIPE, SIG_DFL);
  try {
    Output out(o.output);
    switch (o.mode) {
      case td::Mode::command: return run_command(o, out);
      case td::Mode::listen: return listen(o, out);
      default: return query(o, out);
    }
  } catch (const td::TaskstatsError& e) {
    warn(td::describe(e));
    return 1;
  } catch (const std::exception& e) {
    warn(e.what());
    return 1;
  }
}
