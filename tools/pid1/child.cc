// child.cc: see child.h.
#include "child.h"

#include <unistd.h>

#include <string>
#include <vector>

#include "common/diag.h"
#include "common/spawn.h"

namespace pid1 {

pid_t start_child(char **argv, bool foreground) {
  std::vector<std::string> args;
  for (char **a = argv; *a; ++a) args.emplace_back(*a);
  toolkit::SpawnOptions options;
  options.reset_signals = true;
  // In the child: its own process group, in the terminal's foreground if
  // pid1 had it. SIGTTOU is still blocked here, so tcsetpgrp cannot stop it.
  options.setup = [foreground] {
    setpgid(0, 0);
    if (foreground) tcsetpgrp(STDIN_FILENO, getpgrp());
    return std::string();
  };
  toolkit::Child child = toolkit::spawn(args, options);
  setpgid(child.pid(), child.pid());  // also here, so the group exists at once
  toolkit::ExecResult result = child.wait_exec();
  if (result.stage != toolkit::ExecResult::Stage::started) toolkit::warn(toolkit::describe(result, args[0]));
  return child.pid();
}

}  // namespace pid1
