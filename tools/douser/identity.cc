#include "identity.h"

#include <grp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace douser {

std::string become(const Target &t) {
  auto fail = [](const std::string &what) { return what + ": " + strerror(errno); };
  // Supplementary groups of the target, from the group database.
  int ngroups = 64;
  std::vector<gid_t> want(static_cast<std::size_t>(ngroups));
  while (getgrouplist(t.name.c_str(), t.gid, want.data(), &ngroups) < 0) {
    if (ngroups > 65536) return "too many groups for " + t.name;
    want.resize(static_cast<std::size_t>(ngroups));
  }
  want.resize(static_cast<std::size_t>(ngroups));
  if (setgroups(want.size(), want.data()) != 0) return fail("setgroups");
  std::vector<gid_t> have(want.size() + 1);
  int n = getgroups(static_cast<int>(have.size()), have.data());
  if (n < 0) return fail("getgroups");
  have.resize(static_cast<std::size_t>(n));
  std::sort(want.begin(), want.end());
  std::sort(have.begin(), have.end());
  if (have != want) return "supplementary groups did not change as asked";

  if (setresgid(t.gid, t.gid, t.gid) != 0) return fail("setresgid");
  gid_t rg, eg, sg;
  if (getresgid(&rg, &eg, &sg) != 0 || rg != t.gid || eg != t.gid || sg != t.gid)
    return "gid did not change to " + std::to_string(t.gid);

  if (setresuid(t.uid, t.uid, t.uid) != 0) return fail("setresuid");
  uid_t ru, eu, su;
  if (getresuid(&ru, &eu, &su) != 0 || ru != t.uid || eu != t.uid || su != t.uid)
    return "uid did not change to " + std::to_string(t.uid);
  if (t.uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) return "could regain root after dropping it";
  return "";
}

}  // namespace douser
