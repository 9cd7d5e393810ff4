// supervisor.h: pid1's main loop.
//
// One thread, no signal handlers: every signal of waited_signals() is
// blocked and taken with sigtimedwait. Each wake-up first reaps every
// zombie (waitpid(-1, WNOHANG) until nothing is left), then handles the
// signal: SIGCHLD only wakes the loop; anything else is forwarded to the
// child (or its group). The child's pid cannot be reused while it is not
// reaped, so forwarding by pid is safe until the loop sees it exit.
#pragma once
#include <signal.h>
#include <sys/types.h>

#include "options.h"

namespace pid1 {

// Runs until the child exits; returns pid1's exit status for it.
int supervise(pid_t child, const Options &opt, const sigset_t &waited);

}  // namespace pid1
