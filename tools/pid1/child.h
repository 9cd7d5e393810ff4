// child.h: starting COMMAND.
#pragma once
#include <sys/types.h>

namespace pid1 {

// Starts argv[0] (searched in PATH) with toolkit::spawn: in its own process
// group, made the foreground group of the terminal on stdin when
// `foreground`, every signal disposition and the mask reset. Returns once
// the command runs, or has failed to: then it says why ("pid1: CMD: command
// not found") and the child exits with the toolkit's status (127 or 126),
// which the loop reaps like any exit. Throws std::system_error when the
// pipe or the fork fails.
pid_t start_child(char **argv, bool foreground);

}  // namespace pid1
