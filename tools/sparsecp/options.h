// options.h: the command line of sparsecp.
#pragma once
#include <string>
#include <vector>

#include "file_copy.h"

namespace sparsecp {

// Exit statuses (usage errors exit toolkit::kExitUsage, 2).
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // some file could not be copied

struct Command {
  CopyOptions copy;
  std::vector<std::string> operands;
  bool help = false;
  bool version = false;
};

// Parses argv; throws toolkit::UsageError.
Command parse_command(int argc, char **argv);

// Prints the manual on standard output; false if it could not be written.
bool print_help();

}  // namespace sparsecp
