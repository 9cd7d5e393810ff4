// signals.cc: see signals.h.
#include "signals.h"

#include <string.h>

namespace pid1 {

namespace {
constexpr int kSynchronous[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS};
}  // namespace

sigset_t waited_signals() {
  sigset_t set;
  sigfillset(&set);
  for (int sig : kSynchronous) sigdelset(&set, sig);
  sigdelset(&set, SIGKILL);
  sigdelset(&set, SIGSTOP);
  return set;
}

void reset_dispositions() {
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &dfl, nullptr);  // EINVAL for the two that glibc reserves
  }
}

std::string signal_name(int sig) {
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
    int off = sig - SIGRTMIN;
    return off == 0 ? "SIGRTMIN" : "SIGRTMIN+" + std::to_string(off);
  }
  const char *abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

}  // namespace pid1
