// supervisor.cc: see supervisor.h.
#include "supervisor.h"

#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "common/diag.h"
#include "common/spawn.h"

#include "signals.h"

namespace pid1 {

namespace {

struct State {
  pid_t child;
  const Options &opt;
  bool child_done = false;
  int child_status = 0;
  int child_stopped = 0;   // signal that stopped the child, not yet handled
  bool term_seen = false;  // the grace period is running
  bool killed = false;     // SIGKILL was sent
  timespec deadline = {};  // end of the grace period (CLOCK_MONOTONIC)
};

timespec now() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t;
}

timespec add_ns(timespec t, long long ns) {
  t.tv_sec += ns / 1000000000;
  t.tv_nsec += ns % 1000000000;
  if (t.tv_nsec >= 1000000000) {
    t.tv_sec += 1;
    t.tv_nsec -= 1000000000;
  }
  return t;
}

// b - a, clamped at 0.
timespec until(timespec a, timespec b) {
  long long ns = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
  if (ns < 0) ns = 0;
  return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

// -v: what pid1 does, on stderr.
void say(const State &s, const std::string &msg) {
  if (s.opt.verbose) toolkit::warn(msg);
}

void reap_all(State &s) {
  int status;
  pid_t pid;
  // WUNTRACED: a stop of the child is reported too (once per stop); a
  // stopped orphan is left alone.
  while ((pid = waitpid(-1, &status, WNOHANG | WUNTRACED)) > 0) {
    if (WIFSTOPPED(status)) {
      if (pid == s.child) s.child_stopped = WSTOPSIG(status);
      continue;
    }
    if (pid == s.child) {
      s.child_done = true;
      s.child_status = status;
    } else {
      say(s, "reaped orphan " + std::to_string(pid) + " (exit status " +
                 std::to_string(toolkit::exit_status_of(status)) + ")");
    }
  }
}

void escalate(State &s, const char *why) {
  toolkit::warn(std::string(why) + ": sending SIGKILL to process group " + std::to_string(s.child));
  kill(-s.child, SIGKILL);
  kill(s.child, SIGKILL);  // in case it left its group
  s.killed = true;
}

void forward(State &s, int sig) {
  pid_t target = s.opt.group ? -s.child : s.child;
  int r = kill(target, sig);
  if (r != 0 && errno == ESRCH && s.opt.group) r = kill(s.child, sig);  // it left its group
  if (r != 0 && errno != ESRCH) toolkit::warn("kill: " + toolkit::errno_text(errno));
  say(s,
      "forwarded " + signal_name(sig) + " to " + (s.opt.group ? "process group " : "pid ") + std::to_string(s.child));
}

void on_sigterm(State &s) {
  if (s.opt.grace_ns <= 0 || s.killed) return forward(s, SIGTERM);
  if (s.term_seen) return escalate(s, "second SIGTERM within the grace period");
  s.term_seen = true;
  s.deadline = add_ns(now(), s.opt.grace_ns);
  forward(s, SIGTERM);
}

// Stops pid1 with SIG (the job-control signals are blocked here: unblock
// it for the moment it takes; the kernel drops them for an orphaned
// process group, and then pid1 simply goes on). Returns once continued.
void stop_self(int sig) {
  if (sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU) sig = SIGSTOP;
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  kill(getpid(), sig);
  sigprocmask(SIG_UNBLOCK, &one, nullptr);  // delivered here: pid1 stops
  sigprocmask(SIG_BLOCK, &one, nullptr);
}

// The child stopped. As one shell job with it, pid1 stops too, after
// taking the terminal back for its own group, where the shell expects to
// find it; once the shell continues pid1 (fg or bg), pid1 hands the
// terminal on to the child if it got it back (fg) and continues the child.
void stop_in_step(State &s) {
  int sig = s.child_stopped;
  s.child_stopped = 0;
  if (!s.opt.job_control) return;
  if (tcgetpgrp(STDIN_FILENO) == s.child) tcsetpgrp(STDIN_FILENO, getpgrp());  // SIGTTOU is blocked
  say(s, "child stopped by " + signal_name(sig) + "; stopping too");
  stop_self(sig);
  if (tcgetpgrp(STDIN_FILENO) == getpgrp()) tcsetpgrp(STDIN_FILENO, s.child);
  if (kill(-s.child, SIGCONT) != 0) kill(s.child, SIGCONT);
  say(s, "continued; continuing the child " + std::to_string(s.child));
}

// Waits for the next signal; 0 when the grace period ran out. A signal
// pid1 raised itself is not returned: a SIGPIPE from writing a message to
// a closed pipe (-v, stderr gone) is pid1's own, not the child's.
int next_signal(State &s, const sigset_t &waited) {
  for (;;) {
    bool timed = s.term_seen && !s.killed;
    timespec left = timed ? until(now(), s.deadline) : timespec{};
    siginfo_t info;
    int sig = timed ? sigtimedwait(&waited, &info, &left) : sigwaitinfo(&waited, &info);
    if (sig > 0 && info.si_code == SI_USER && info.si_pid == getpid()) continue;
    if (sig > 0) return sig;
    if (errno == EAGAIN) return 0;
    if (errno != EINTR) toolkit::warn("sigwaitinfo: " + toolkit::errno_text(errno));
  }
}

}  // namespace

int supervise(pid_t child, const Options &opt, const sigset_t &waited) {
  State s{child, opt};
  for (;;) {
    reap_all(s);
    if (s.child_done) break;
    if (s.child_stopped) {
      stop_in_step(s);
      continue;
    }
    int sig = next_signal(s, waited);
    if (sig == 0)
      escalate(s, "grace period over");
    else if (sig == SIGTERM)
      on_sigterm(s);
    else if (sig != SIGCHLD)
      forward(s, sig);
  }
  return toolkit::exit_status_of(s.child_status);
}

}  // namespace pid1
