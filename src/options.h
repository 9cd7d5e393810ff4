// Run-time options, declared once in the table in options.cc (name, default,
// meaning) and read from the environment at initialisation. A bad value is
// reported on stderr in one line and the default is kept.
#pragma once

#include <cstdint>

namespace spanalloc {

struct Options {
  uint64_t release_delay_ms;    // SPANALLOC_RELEASE_DELAY_MS
  uint64_t free_cap_bytes;      // SPANALLOC_FREE_CAP_MB
  uint64_t thread_cache_bytes;  // SPANALLOC_THREAD_CACHE_KB
  bool report_at_exit;          // SPANALLOC_REPORT
  bool cgroup_aware;            // SPANALLOC_CGROUP_LIMIT
  bool full_checks;             // SPANALLOC_CHECKS=full (default: "default")
  // Derived: the memory limit of our cgroup (v2 memory.max or v1
  // memory.limit_in_bytes), 0 when none or when cgroup_aware is off.
  uint64_t cgroup_limit_bytes;
};

extern Options g_options __attribute__((visibility("hidden")));

// Parses the environment into g_options. Never allocates.
void LoadOptions();
// Writes the option table with current values to fd.
void PrintOptions(int fd);

}  // namespace spanalloc
