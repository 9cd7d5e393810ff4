// options.h: the command line of sparsecp.
#pragma once
#include <string>
#include <vector>

#include "file_copy.h"

namespace sparsecp {

// Exit statuses.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // some file could not be copied
constexpr int kExitUsage = 2;    // bad option or operands

struct Command {
  CopyOptions copy;
  std::vector<std::string> operands;
  bool help = false;
  bool version = false;
};

// Parses argv. On a usage error prints the message and the hint to stderr
// and returns false.
bool parse_command(int argc, char** argv, Command& cmd);

// Prints "sparsecp: MSG" and the --help hint to stderr; returns kExitUsage.
int usage_error(const std::string& msg);

void print_help();
void print_version();

}  // namespace sparsecp
