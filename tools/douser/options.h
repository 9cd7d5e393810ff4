// options: command line of douser, and the checks on a user name.
#pragma once

#include <string>
#include <vector>

#include "common/diag.h"

namespace douser {

struct Options {
  std::string user = "root";         // -u USER
  std::vector<std::string> command;  // COMMAND [ARG...]
  bool help = false;
  bool version = false;
};

// Parses argv[1..] with getopt_long (the toolkit's messages): -u USER,
// --user USER, --user=USER, -h/--help, --version. Options end at the first
// operand or at "--". Throws toolkit::UsageError.
Options parse_options(const std::vector<std::string> &args);

// A user name we are willing to look up: 1..32 characters, no '/', ':',
// ',', whitespace or control characters, not starting with '-'. Names that
// fail are reported as unknown users (they cannot exist in /etc/passwd).
bool plausible_user_name(const std::string &name);

}  // namespace douser
