// probe.cc: the child the pid1 tests run under pid1 (and under tini).
//
//   probe catch READY SIG...     handle SIGs; create READY; on signal S print
//                                "caught S" and exit S
//   probe ignore READY SIG...    ignore SIGs; create READY; sleep (exit 99
//                                after 60 s)
//   probe record READY LOG       handle every catchable signal, append its
//                                number to LOG; exit 0 on SIGTERM
//   probe kill1 SIG [SECONDS]    handle SIG, send it to PID 1, exit S when
//                                it comes back (99 after SECONDS, default 20)
//   probe orphans N LOG MS       make N orphans that exit once re-parented;
//                                exit 0 when all were reaped within MS ms,
//                                1 (listing the zombies) otherwise
//   probe dirty CMD [ARG...]     ignore INT HUP QUIT USR1, block USR2 TERM
//                                WINCH RTMIN+1, then exec CMD
// SIG is a number, a name without SIG (TERM), RTMIN+N or RTMAX-N.
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>

namespace {

int log_fd = -1;

[[noreturn]] void die(const std::string &msg) {
  std::fprintf(stderr, "probe: %s\n", msg.c_str());
  std::exit(98);
}

int parse_signal(const std::string &s) {
  if (!s.empty() && isdigit(static_cast<unsigned char>(s[0]))) return std::atoi(s.c_str());
  if (s.rfind("RTMIN", 0) == 0) return SIGRTMIN + (s.size() > 5 ? std::atoi(s.c_str() + 5) : 0);
  if (s.rfind("RTMAX", 0) == 0) return SIGRTMAX + (s.size() > 5 ? std::atoi(s.c_str() + 5) : 0);
  for (int sig = 1; sig < 32; ++sig) {
    const char *name = sigabbrev_np(sig);
    if (name && s == name) return sig;
  }
  die("unknown signal " + s);
}

void on_signal(int sig, void (*handler)(int)) {
  struct sigaction sa = {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, nullptr) != 0) die("sigaction " + std::to_string(sig));
}

void touch(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) die(std::string("cannot create ") + path);
  close(fd);
}

// Async-signal-safe "TEXT N\n" to fd.
void write_number(int fd, const char *text, int n) {
  char buf[64];
  size_t len = strlen(text);
  memcpy(buf, text, len);
  char digits[16];
  int d = 0;
  do digits[d++] = static_cast<char>('0' + n % 10);
  while ((n /= 10) > 0);
  while (d > 0) buf[len++] = digits[--d];
  buf[len++] = '\n';
  if (write(fd, buf, len) < 0) _exit(97);
}

void caught(int sig) {
  write_number(STDOUT_FILENO, "caught ", sig);
  _exit(sig);
}

void recorded(int sig) {
  write_number(log_fd, "", sig);
  if (sig == SIGTERM) _exit(0);
}

// Sleeps (without alarm(), so SIGALRM stays free for the tests), exits 99.
[[noreturn]] void sleep_then_exit(int seconds) {
  for (long i = 0; i < seconds * 100L; ++i) usleep(10000);
  _exit(99);
}

int run_catch(int argc, char **argv) {
  for (int i = 3; i < argc; ++i) on_signal(parse_signal(argv[i]), caught);
  touch(argv[2]);
  sleep_then_exit(60);
}

int run_ignore(int argc, char **argv) {
  for (int i = 3; i < argc; ++i) signal(parse_signal(argv[i]), SIG_IGN);
  touch(argv[2]);
  sleep_then_exit(60);
}

int run_record(char **argv) {
  log_fd = open(argv[3], O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (log_fd < 0) die("cannot open log");
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP || sig == SIGCHLD || (sig > 31 && sig < SIGRTMIN)) continue;
    on_signal(sig, recorded);
  }
  touch(argv[2]);
  sleep_then_exit(60);
}

int run_kill1(int argc, char **argv) {
  int sig = parse_signal(argv[2]);
  on_signal(sig, caught);
  if (kill(1, sig) != 0) die("kill(1) failed");
  sleep_then_exit(argc > 3 ? std::atoi(argv[3]) : 20);
}

// The grandchild: waits until its parent is gone, logs "PID PPID", exits.
[[noreturn]] void orphan(pid_t parent, const char *log) {
  for (int i = 0; i < 5000 && getppid() == parent; ++i) usleep(1000);
  int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
  std::string line = std::to_string(getpid()) + " " + std::to_string(getppid()) + "\n";
  if (fd < 0 || write(fd, line.data(), line.size()) < 0) _exit(1);
  _exit(0);
}

void make_orphan(const char *log) {
  pid_t mid = fork();
  if (mid < 0) die("fork");
  if (mid == 0) {
    pid_t me = getpid();
    if (fork() == 0) orphan(me, log);
    _exit(0);
  }
  waitpid(mid, nullptr, 0);
}

std::set<std::string> logged_pids(const char *log, size_t &lines, std::string &ppids) {
  std::ifstream in(log);
  std::set<std::string> pids;
  std::string pid, ppid;
  lines = 0;
  ppids.clear();
  while (in >> pid >> ppid) {
    pids.insert(pid);
    ppids += ppid + " ";
    ++lines;
  }
  return pids;
}

bool gone(const std::set<std::string> &pids) {
  for (const std::string &p : pids)
    if (access(("/proc/" + p).c_str(), F_OK) == 0) return false;
  return true;
}

int run_orphans(char **argv) {
  int n = std::atoi(argv[2]);
  const char *log = argv[3];
  int ms = std::atoi(argv[4]);
  for (int i = 0; i < n; ++i) make_orphan(log);
  size_t lines = 0;
  std::string ppids;
  std::set<std::string> pids;
  for (int t = 0; t < ms; ++t) {
    pids = logged_pids(log, lines, ppids);
    if (lines == static_cast<size_t>(n) && gone(pids)) {
      std::printf("reaped %d orphans (re-parented to: %s)\n", n, ppids.c_str());
      return 0;
    }
    usleep(1000);
  }
  std::printf("not reaped after %d ms: %zu of %d orphans logged (re-parented to: %s); left:", ms, lines, n,
              ppids.c_str());
  for (const std::string &p : pids)
    if (access(("/proc/" + p).c_str(), F_OK) == 0) std::printf(" %s", p.c_str());
  std::printf("\n");
  return 1;
}

int run_dirty(char **argv) {
  for (int sig : {SIGINT, SIGHUP, SIGQUIT, SIGUSR1}) signal(sig, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGUSR2, SIGTERM, SIGWINCH, SIGRTMIN + 1}) sigaddset(&set, sig);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  execvp(argv[2], argv + 2);
  die(std::string("exec ") + argv[2] + ": " + strerror(errno));
}

}  // namespace

int main(int argc, char **argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "catch" && argc >= 4) return run_catch(argc, argv);
  if (mode == "ignore" && argc >= 4) return run_ignore(argc, argv);
  if (mode == "record" && argc == 4) return run_record(argv);
  if (mode == "kill1" && (argc == 3 || argc == 4)) return run_kill1(argc, argv);
  if (mode == "orphans" && argc == 5) return run_orphans(argv);
  if (mode == "dirty" && argc >= 3) return run_dirty(argv);
  die("usage: see probe.cc");
}
