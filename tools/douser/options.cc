#include "options.h"

#include "audit.h"

namespace douser {

bool plausible_user_name(const std::string &name) {
  if (name.empty() || name.size() > 32 || name[0] == '-') return false;
  for (unsigned char c : name)
    if (c <= 0x20 || c == 0x7f || c == '/' || c == ':' || c == ',') return false;
  return true;
}

Options parse_options(const std::vector<std::string> &args) {
  Options o;
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string &a = args[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.empty() || a[0] != '-') break;
    if (a == "-h" || a == "--help") {
      o.help = true;
      return o;
    }
    if (a == "--version") {
      o.version = true;
      return o;
    }
    if (a == "-u" || a == "--user") {
      if (i + 1 >= args.size()) throw UsageError("option " + a + " needs a user name");
      o.user = args[++i];
    } else if (a.rfind("--user=", 0) == 0) {
      o.user = a.substr(7);
    } else if (a.rfind("-u", 0) == 0 && a.size() > 2) {
      o.user = a.substr(2);
    } else {
      throw UsageError("unknown option '" + log_escape(a, 64) + "'");
    }
  }
  o.command.assign(args.begin() + static_cast<long>(i), args.end());
  if (o.command.empty()) throw UsageError("no command given");
  if (o.command[0].empty()) throw UsageError("empty command name");
  return o;
}

}  // namespace douser
