// Run-time options, declared once in the table in options.cc (name, default,
// meaning) and read from the environment at initialisation. A bad value is
// reported on stderr in one line and the default is kept.
#pragma once

#include <cstddef>
#include <cstdint>

namespace spanalloc {

// What the exit report is written as (SPANALLOC_REPORT: 0, 1, json).
enum class ReportFormat : uint8_t { kNone, kText, kJson };

// Where free objects are cached first (SPANALLOC_CACHE: thread, cpu;
// cpu_cache.h).
enum class CacheMode : uint8_t { kThread, kCpu };

// Longest SPANALLOC_REPORT_FILE accepted, terminating zero included.
inline constexpr size_t kReportPathMax = 1024;

struct Options {
  uint64_t release_delay_ms;         // SPANALLOC_RELEASE_DELAY_MS
  uint64_t free_cap_bytes;           // SPANALLOC_FREE_CAP_MB
  uint64_t thread_cache_bytes;       // SPANALLOC_THREAD_CACHE_KB
  ReportFormat report;               // SPANALLOC_REPORT
  char report_file[kReportPathMax];  // SPANALLOC_REPORT_FILE ("" = stderr)
  bool cgroup_aware;                 // SPANALLOC_CGROUP_LIMIT
  bool full_checks;             // SPANALLOC_CHECKS=full (default: "default")
  bool background;              // SPANALLOC_BACKGROUND: the background release thread may start
  bool hugepages;               // SPANALLOC_HUGEPAGES: MADV_HUGEPAGE, 2 MiB-aligned growth and release
  // SPANALLOC_RETAIN: free committed page-heap memory kept past the release
  // delay. mallopt(M_TRIM_THRESHOLD / M_TOP_PAD) and MALLOC_TRIM_THRESHOLD_ /
  // MALLOC_TOP_PAD_ set it too (RetainBytes() reads it; see SetGlibcTunable).
  uint64_t retain_bytes;
  // SPANALLOC_MEMORY_LIMIT (bytes, K/M/G suffixes); unset: the cgroup limit.
  // 0 = no limit. memory_limit_source says where the value came from.
  uint64_t memory_limit_bytes;
  const char *memory_limit_source;
  uint64_t profile_rate_bytes;  // SPANALLOC_PROFILE_RATE (heap_profile.h)
  uint64_t guard_sample;        // SPANALLOC_GUARD_SAMPLE (guarded_alloc.h)
  // Derived: the memory limit of our cgroup (v2 memory.max or v1
  // memory.limit_in_bytes, the smallest along our group's path), 0 when
  // none or when cgroup_aware is off.
  uint64_t cgroup_limit_bytes;
  CacheMode cache_mode;      // SPANALLOC_CACHE (cpu falls back to thread where rseq is missing)
  uint64_t cpu_cache_bytes;  // SPANALLOC_CPU_CACHE_KB
};

extern Options g_options __attribute__((visibility("hidden")));

// Retained bytes, read without a lock by the page heap (mallopt may change
// them at any time).
inline uint64_t RetainBytes() { return __atomic_load_n(&g_options.retain_bytes, __ATOMIC_RELAXED); }

// glibc's tunables that have a spanalloc meaning: M_TRIM_THRESHOLD (-1) and
// M_TOP_PAD (-2), as mallopt numbers them. Retained bytes become trim
// threshold + top pad (a negative threshold: never release on the delay).
// Returns false for a value glibc would refuse too.
enum class GlibcTunable { kTrimThreshold, kTopPad };
bool SetGlibcTunable(GlibcTunable which, long value);

// Parses "123", "64K", "512M", "2G" (powers of 1024; k/m/g too) into bytes.
bool ParseBytes(const char *s, uint64_t *out);

// Parses the environment into g_options. Never allocates.
void LoadOptions();
// One option with its current value, as the environment would spell it:
// a number, or text (text == nullptr for numbers).
struct OptionValue {
  const char *name;
  const char *meaning;
  uint64_t number;
  const char *text;
};
// Calls fn for every option of the table, in table order.
void ForEachOption(void (*fn)(const OptionValue &v, void *ctx), void *ctx);
// Writes the option table with current values to fd, then the memory limit
// in force and its source.
void PrintOptions(int fd);

}  // namespace spanalloc
