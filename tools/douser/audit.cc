#include "audit.h"

#include <syslog.h>

#include <algorithm>
#include <cstdio>

#include "common/diag.h"

namespace douser {

std::string log_escape(const std::string &s, std::size_t max) {
  bool cut = s.size() > max;
  std::string q = toolkit::quote(s, max);  // 'ESCAPED', or 'ESCAPED'... when cut
  return q.substr(1, q.size() - (cut ? 5 : 2)) + (cut ? "..." : "");
}

std::string log_command(const std::vector<std::string> &argv) {
  // Joined only up to the cut, so a command line of megabytes costs no more
  // than a short one.
  constexpr std::size_t kMax = 1024;
  std::string joined;
  for (const std::string &a : argv) {
    if (!joined.empty()) joined += ' ';
    joined.append(a, 0, kMax + 1 - std::min(joined.size(), kMax + 1));
    if (joined.size() > kMax) break;
  }
  return log_escape(joined, kMax);
}

void audit_open() { openlog("douser", LOG_PID | LOG_NDELAY, LOG_AUTH); }

void audit_granted(const std::string &msg) { syslog(LOG_AUTH | LOG_NOTICE, "%s", msg.c_str()); }

void audit_refused(const std::string &msg) { syslog(LOG_AUTH | LOG_WARNING, "%s", msg.c_str()); }

}  // namespace douser
