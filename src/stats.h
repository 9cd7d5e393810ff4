// Statistics: gathered on demand from every layer (no counters on the fast
// paths). Each figure is declared once, in the tables below (name, meaning,
// unit); the report (report.h) prints the same tables as text, as JSON and
// as malloc_info's XML, and spanalloc_get_stats returns the totals.
//
// Identity of the totals (every byte mapped is in exactly one place):
//   mapped = in_use_small + in_use_large + thread_cache_free + central_free
//            + page_heap_free + released + metadata
//   committed = mapped - released
// Small spans: sum over classes of span_bytes
//            = in_use_small + thread_cache_free + central_free
// (in_use_small includes the unused tails of small spans). The figures are
// read layer by layer, not under one lock: the identities hold exactly when
// no other thread allocates meanwhile. thread_cache_free counts other
// threads' caches as of their last slow path (the calling thread's exactly).
#pragma once

#include <cstddef>
#include <cstdint>

#include "spanalloc.h"

namespace spanalloc {

void GatherStats(spanalloc_stats *out);

enum class StatUnit { kBytes, kCount };

// One field of spanalloc_stats.
struct TotalStat {
  const char *key;  // JSON key, as spelled in spanalloc_stats
  uint64_t spanalloc_stats::*field;
  StatUnit unit;
  const char *meaning;
};

inline constexpr TotalStat kTotalStats[] = {
    {"in_use_small", &spanalloc_stats::in_use_small, StatUnit::kBytes,
     "in use by the program, small objects (class sizes, with span tails)"},
    {"in_use_large", &spanalloc_stats::in_use_large, StatUnit::kBytes,
     "in use by the program, large blocks (whole pages)"},
    {"thread_cache_free", &spanalloc_stats::thread_cache_free, StatUnit::kBytes, "free in thread caches and per-CPU caches"},
    {"central_free", &spanalloc_stats::central_free, StatUnit::kBytes, "free in central lists and their spans"},
    {"page_heap_free", &spanalloc_stats::page_heap_free, StatUnit::kBytes, "free in the page heap (committed)"},
    {"released", &spanalloc_stats::released, StatUnit::kBytes, "released to the OS (mapped, not resident)"},
    {"metadata", &spanalloc_stats::metadata, StatUnit::kBytes,
     "metadata (spans, caches, page map leaves: mostly not resident)"},
    {"mapped", &spanalloc_stats::mapped, StatUnit::kBytes, "mapped in all (the sum of the above)"},
    {"committed", &spanalloc_stats::committed, StatUnit::kBytes, "committed (mapped less released)"},
    {"thread_caches", &spanalloc_stats::thread_caches, StatUnit::kCount, "live thread caches, and per-CPU caches"},
    {"os_maps", &spanalloc_stats::os_maps, StatUnit::kCount, "mmap calls"},
    {"os_releases", &spanalloc_stats::os_releases, StatUnit::kCount, "madvise releases"},
};

// One size class, as the central list and its spans see it.
struct ClassStats {
  uint64_t size_class;
  uint64_t size;           // bytes per object
  uint64_t span_pages;     // pages per span
  uint64_t spans;          // spans of this class
  uint64_t span_bytes;     // spans * span_pages * page size
  uint64_t free_in_spans;  // free objects in the spans' bitmaps
  uint64_t in_slots;       // free objects in whole batches (transfer slots)
  uint64_t free_bytes;     // (free_in_spans + in_slots) * size
};

// One column of the per-class table.
struct ClassStat {
  const char *key;     // JSON key
  const char *header;  // text column header
  int width;           // text column width
  uint64_t ClassStats::*field;
};

inline constexpr ClassStat kClassStats[] = {
    {"class", "class", 5, &ClassStats::size_class},
    {"size", "size", 6, &ClassStats::size},
    {"span_pages", "pages", 5, &ClassStats::span_pages},
    {"spans", "spans", 6, &ClassStats::spans},
    {"span_bytes", "span-bytes", 11, &ClassStats::span_bytes},
    {"free_in_spans", "free-in-spans", 13, &ClassStats::free_in_spans},
    {"in_slots", "in-slots", 8, &ClassStats::in_slots},
    {"free_bytes", "free-bytes", 11, &ClassStats::free_bytes},
};

// Fills *out for class cl (1 <= cl < kNumClasses); false when the class has
// neither spans nor free objects (the report leaves it out).
bool GatherClassStats(uint32_t cl, ClassStats *out);

}  // namespace spanalloc
