// child.h: starting COMMAND.
#pragma once
#include <sys/types.h>

namespace pid1 {

// Forks and execs argv[0] (searched in PATH) in its own process group, made
// the foreground group of the terminal on stdin when `foreground`, with a clean
// signal state. The child prints "pid1: exec 'CMD' failed: REASON" and
// exits 127 (not found) or 126 (not executable) when exec fails.
// Returns the child's pid, or -1 (errno set) when fork fails.
pid_t spawn_child(char **argv, bool foreground);

}  // namespace pid1
