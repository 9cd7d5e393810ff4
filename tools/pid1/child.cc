// child.cc: see child.h.
#include "child.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "options.h"
#include "signals.h"

namespace pid1 {

namespace {

// Own process group, in the terminal's foreground if pid1 had it.
// SIGTTOU is still blocked here, so tcsetpgrp cannot stop the child.
void own_group(bool foreground) {
  setpgid(0, 0);
  if (foreground) tcsetpgrp(STDIN_FILENO, getpgrp());
}

int exec_failure_status(int err) { return err == ENOENT || err == ENOTDIR ? kExitNotFound : kExitCannotExec; }

[[noreturn]] void run_command(char **argv, bool foreground) {
  own_group(foreground);
  clear_signal_state();
  execvp(argv[0], argv);
  int err = errno;
  std::fprintf(stderr, "pid1: exec '%s' failed: %s\n", argv[0], std::strerror(err));
  _exit(exec_failure_status(err));
}

}  // namespace

pid_t spawn_child(char **argv, bool foreground) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) run_command(argv, foreground);
  if (pid > 0) setpgid(pid, pid);  // also here, so the group exists at once
  return pid;
}

}  // namespace pid1
