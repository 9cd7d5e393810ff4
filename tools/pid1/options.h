// options.h: the command line of pid1.
#pragma once

namespace pid1 {

constexpr int kExitUsage = 2;          // bad option or no command
constexpr int kExitCannotExec = 126;   // command found but not executable
constexpr int kExitNotFound = 127;     // command not found
constexpr double kDefaultGrace = 10.0; // seconds

struct Options {
  bool group = false;           // -g: signal the child's process group
  double grace = kDefaultGrace; // --grace: seconds from SIGTERM to SIGKILL; 0: never
  bool verbose = false;         // -v: say what is forwarded and reaped
  bool help = false;
  bool version = false;
  char** command = nullptr;     // COMMAND [ARG...], null-terminated
};

// Parses argv; on a usage error prints it and returns false.
bool parse_options(int argc, char** argv, Options& opt);

void print_help();
void print_version();

}  // namespace pid1
