// report: renders decoded taskstats records as text or JSON.
#pragma once

#include <cstdint>
#include <string>

#include "taskstats_layout.h"

namespace taskdelays {

struct ReportOptions {
  bool delays = true;   // -d (always on; kept for getdelays compatibility)
  bool io = false;      // -i
  bool ctxsw = false;   // -q
  bool json = false;    // --json
};

// What the record describes: one thread (pid) or a whole thread group.
enum class Scope { thread, group };

// "1.234 ms", "17.4 us", "812 ns", "2.500 s".
std::string human_ns(uint64_t ns);
// JSON string literal with escapes.
std::string json_quote(const std::string& s);

// `id` is the pid or tgid the kernel attached to the record; `comm_hint`
// is used when the record itself carries no command name (tgid replies).
std::string render_text(const Record& r, Scope scope, uint32_t id,
                        const std::string& comm_hint, const ReportOptions& opt);
std::string render_json(const Record& r, Scope scope, uint32_t id,
                        const std::string& comm_hint, const ReportOptions& opt);

}  // namespace taskdelays
