// signals.h: which signals pid1 takes over, and how the child gets them back.
#pragma once
#include <signal.h>

#include <string>

namespace pid1 {

// Every signal pid1 blocks and waits for with sigtimedwait: all but the
// synchronous ones (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP,
// SIGSYS), which must stay deliverable, and SIGKILL/SIGSTOP, which cannot be
// blocked. A blocked signal is never discarded, not even for PID 1.
sigset_t waited_signals();

// Sets every disposition to SIG_DFL (so an inherited SIG_IGN for SIGCHLD
// cannot make the kernel reap the child behind pid1's back).
void reset_dispositions();

// "SIGTERM", "SIGRTMIN+3", ...
std::string signal_name(int sig);

}  // namespace pid1
