// options.h: the command line of pid1.
#pragma once

namespace pid1 {

struct Options {
  bool group = false;      // -g: signal the child's process group
  long long grace_ns = 0;  // --grace: SIGTERM to SIGKILL, in ns; 0 (default): never
  bool verbose = false;    // -v: say what is forwarded and reaped
  // Set by main, not an option: pid1 is a job of a shell on its controlling
  // terminal (stdin is that terminal, pid1 is not the session leader), so
  // it stops and continues in step with the child.
  bool job_control = false;
  bool help = false;
  bool version = false;
  char **command = nullptr;  // COMMAND [ARG...], null-terminated
};

// Parses argv; on a usage error prints it (with the --help hint) and
// returns false: exit with toolkit::kExitUsage.
bool parse_options(int argc, char **argv, Options &opt);

void print_help();

}  // namespace pid1
