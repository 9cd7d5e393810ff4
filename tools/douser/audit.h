// audit: what douser writes to the system log (facility LOG_AUTH).
// Every attempt, granted or refused, produces exactly one line per outcome.
#pragma once

#include <string>
#include <vector>

namespace douser {

// Makes `s` safe for one log line: toolkit::quote's escaping (\n, \t,
// \xNN for other control bytes and malformed UTF-8, \\, \'), without the
// quotes; cut after `max` bytes of `s`, then "...".
std::string log_escape(const std::string &s, std::size_t max = 256);
// The command line as a single escaped, space-separated string (<= 1024).
std::string log_command(const std::vector<std::string> &argv);

void audit_open();
void audit_granted(const std::string &msg);  // LOG_NOTICE
void audit_refused(const std::string &msg);  // LOG_WARNING

}  // namespace douser
