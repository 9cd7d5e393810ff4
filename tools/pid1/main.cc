// main.cc: pid1's entry point: options, signal take-over, child, loop.
#include <signal.h>
#include <sys/prctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "child.h"
#include "common/cli.h"
#include "common/diag.h"
#include "common/std_streams.h"
#include "options.h"
#include "signals.h"
#include "supervisor.h"

using namespace pid1;

namespace {

// Orphans go to PID 1; anywhere else they come to us only as a subreaper.
void become_reaper() {
  if (getpid() == 1) return;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
    toolkit::warn("warning: not PID 1 and PR_SET_CHILD_SUBREAPER failed (" + toolkit::errno_text(errno) +
                  "); orphans will not be reaped");
}

}  // namespace

int main(int argc, char **argv) {
  toolkit::set_program_name("pid1");
  // A closed 0, 1 or 2 is filled with /dev/null that fails like a closed
  // descriptor, so no pipe of pid1's lands there.
  if (!toolkit::ensure_std_fds()) return 1;
  Options opt;
  if (!parse_options(argc, argv, opt)) return toolkit::kExitUsage;
  if (opt.help) return print_help(), 0;
  if (opt.version) return toolkit::print_version();
  sigset_t waited = waited_signals();
  if (sigprocmask(SIG_BLOCK, &waited, nullptr) != 0) toolkit::die(1, "sigprocmask: " + toolkit::errno_text(errno));
  reset_dispositions();
  become_reaper();
  // The child takes the terminal only from pid1's own group: a pid1 started
  // in the background must leave it to the shell.
  bool foreground = isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
  opt.job_control = isatty(STDIN_FILENO) && tcgetsid(STDIN_FILENO) == getsid(0) && getsid(0) != getpid();
  pid_t child;
  try {
    child = start_child(opt.command, foreground);
  } catch (const std::system_error &e) {
    toolkit::die(1, e.what());
  }
  return supervise(child, opt, waited);
}
