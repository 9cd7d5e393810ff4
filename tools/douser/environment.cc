#include "environment.h"

namespace douser {

bool allowed_from_caller(const std::string &entry) {
  auto eq = entry.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  std::string name = entry.substr(0, eq);
  std::string value = entry.substr(eq + 1);
  // Named one by one (not "LC_*"): a caller with 50,000 LC_x variables
  // must not hand them all to the command.
  static const char *const kListed[] = {
      "TERM",           "COLORTERM",    "LANG",        "LANGUAGE", "TZ",
      "LC_ALL",         "LC_ADDRESS",   "LC_COLLATE",  "LC_CTYPE", "LC_IDENTIFICATION",
      "LC_MEASUREMENT", "LC_MESSAGES",  "LC_MONETARY", "LC_NAME",  "LC_NUMERIC",
      "LC_PAPER",       "LC_TELEPHONE", "LC_TIME"};
  bool listed = false;
  for (const char *l : kListed) listed = listed || name == l;
  if (!listed) return false;
  if (value.size() > 256 || value.rfind("()", 0) == 0) return false;
  // TZ may name a zone like "Europe/Paris", but never an absolute file.
  bool slash_ok = name == "TZ" && value[0] != '/' && value.rfind(":/", 0) != 0;
  for (unsigned char c : value)
    if (c < 0x20 || c == 0x7f || (c == '/' && !slash_ok) || c == '%' || c == '\\') return false;
  // "..": no path traversal in TZ or locale names.
  if (value.find("..") != std::string::npos) return false;
  return true;
}

std::vector<std::string> build_environment(const std::vector<std::string> &caller_env, const Target &t,
                                           const std::string &caller_name, unsigned caller_uid) {
  std::vector<std::string> env;
  for (const std::string &e : caller_env) {
    if (!allowed_from_caller(e)) continue;
    std::string name = e.substr(0, e.find('='));
    bool dup = false;
    for (const std::string &have : env)
      if (have.compare(0, name.size() + 1, name + "=") == 0) dup = true;
    if (!dup) env.push_back(e);
  }
  env.push_back("HOME=" + (t.home.empty() ? std::string("/") : t.home));
  env.push_back("USER=" + t.name);
  env.push_back("LOGNAME=" + t.name);
  env.push_back("SHELL=" + (t.shell.empty() ? std::string("/bin/sh") : t.shell));
  env.push_back(std::string("PATH=") + kSecurePath);
  env.push_back("DOUSER_USER=" + caller_name);
  env.push_back("DOUSER_UID=" + std::to_string(caller_uid));
  return env;
}

}  // namespace douser
