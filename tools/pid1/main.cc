// main.cc: pid1's entry point: options, signal take-over, child, loop.
#include <signal.h>
#include <sys/prctl.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>

#include "child.h"
#include "options.h"
#include "signals.h"
#include "supervisor.h"

using namespace pid1;

namespace {

// Orphans go to PID 1; anywhere else they come to us only as a subreaper.
void become_reaper() {
  if (getpid() == 1) return;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
    std::perror("pid1: warning: not PID 1 and PR_SET_CHILD_SUBREAPER failed; orphans will not be reaped");
}

}  // namespace

int main(int argc, char **argv) {
  Options opt;
  if (!parse_options(argc, argv, opt)) return kExitUsage;
  if (opt.help) return print_help(), 0;
  if (opt.version) return print_version(), 0;
  sigset_t waited = waited_signals();
  if (sigprocmask(SIG_BLOCK, &waited, nullptr) != 0) return std::perror("pid1: sigprocmask"), 1;
  reset_dispositions();
  become_reaper();
  // The child takes the terminal only from pid1's own group: a pid1 started
  // in the background must leave it to the shell.
  bool foreground = isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
  opt.job_control = isatty(STDIN_FILENO) && tcgetsid(STDIN_FILENO) == getsid(0) && getsid(0) != getpid();
  pid_t child = spawn_child(opt.command, foreground);
  if (child < 0) return std::perror("pid1: fork"), 1;
  return supervise(child, opt, waited);
}
