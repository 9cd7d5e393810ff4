#include "options.h"

#include <getopt.h>

#include "common/cli.h"

namespace douser {

bool plausible_user_name(const std::string &name) {
  if (name.empty() || name.size() > 32 || name[0] == '-') return false;
  for (unsigned char c : name)
    if (c <= 0x20 || c == 0x7f || c == '/' || c == ':' || c == ',') return false;
  return true;
}

Options parse_options(const std::vector<std::string> &args) {
  enum { kVersion = 0x100 };
  static const option kLong[] = {{"help", no_argument, nullptr, 'h'},
                                 {"user", required_argument, nullptr, 'u'},
                                 {"version", no_argument, nullptr, kVersion},
                                 {nullptr, 0, nullptr, 0}};
  std::vector<std::string> copy(args);
  std::vector<char *> argv{const_cast<char *>("douser")};
  for (std::string &a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  Options o;
  // '+': the first operand is COMMAND; its own options are not ours.
  int first = toolkit::parse_options(static_cast<int>(argv.size() - 1), argv.data(), "+hu:", kLong,
                                     [&](int c, const char *arg) {
                                       if (c == 'u') o.user = arg;
                                       if (c == 'h') o.help = true;
                                       if (c == kVersion) o.version = true;
                                       return !o.help && !o.version;
                                     });
  if (o.help || o.version) return o;
  o.command.assign(argv.begin() + first, argv.end() - 1);
  if (o.command.empty()) throw toolkit::UsageError("no command given");
  if (o.command[0].empty()) throw toolkit::UsageError("empty command name");
  return o;
}

}  // namespace douser
