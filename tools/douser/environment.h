// environment: the clean environment the command runs with.
//
// Nothing of the caller's environment passes except a short allow-list
// (TERM, COLORTERM, LANG, LANGUAGE, the 13 LC_ categories, TZ), and those only with safe
// values: no '/' (locale and terminfo paths are where the attacks are),
// no leading "()" (bash functions), at most 256 characters. Everything
// else (LD_*, IFS, PATH, BASH_ENV, ENV, PYTHON*, ...) is dropped. HOME,
// USER, LOGNAME and SHELL are the target's; PATH is kSecurePath.
#pragma once

#include <string>
#include <vector>

namespace douser {

inline constexpr const char *kSecurePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct Target {
  std::string name;
  unsigned uid = 0;
  unsigned gid = 0;
  std::string home;
  std::string shell;
};

// `caller_env`: "NAME=value" strings. `caller_name`, `caller_uid` become
// DOUSER_USER and DOUSER_UID (like sudo's SUDO_USER).
std::vector<std::string> build_environment(const std::vector<std::string> &caller_env, const Target &t,
                                           const std::string &caller_name, unsigned caller_uid);

// True if `entry` ("NAME=value") may pass from the caller to the command.
bool allowed_from_caller(const std::string &entry);

}  // namespace douser
