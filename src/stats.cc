#include "stats.h"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

#include "central_list.h"
#include "metadata_alloc.h"
#include "options.h"
#include "os_memory.h"
#include "page_heap.h"
#include "allocator.h"
#include "thread_cache.h"

namespace spanalloc {

namespace {

void Print(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void Print(int fd, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n <= 0) return;
  size_t len = size_t(n) < sizeof line ? size_t(n) : sizeof line - 1;
  if (write(fd, line, len) < 0) return;
}

double MiB(uint64_t b) { return double(b) / (1024.0 * 1024.0); }

void ReportAtExit() { PrintReport(STDERR_FILENO); }

}  // namespace

void InitStats() {
  if (g_options.report_at_exit) atexit(ReportAtExit);
}

void GatherStats(spanalloc_stats *out) {
  PageHeapStats ph = g_page_heap.Stats();
  uint64_t central = 0;
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    CentralStats cs = g_central[cl].Stats();
    central += (cs.slot_objects + cs.span_free) * kClassShape[cl].size;
  }
  uint64_t caches = 0, cached = 0;
  ThreadCache::RegistryStats(&caches, &cached);
  out->mapped = g_os_counters.mapped.load(std::memory_order_relaxed);
  out->released = ph.released_bytes;
  out->committed = out->mapped - ph.released_bytes;
  out->page_heap_free = ph.free_bytes;
  out->central_free = central;
  out->thread_cache_free = cached;
  uint64_t small_free = central + cached;
  out->in_use_small = ph.small_span_bytes > small_free ? ph.small_span_bytes - small_free : 0;
  out->in_use_large = ph.large_bytes;
  out->metadata = g_metadata_bytes.load(std::memory_order_relaxed);
  out->thread_caches = caches;
  out->os_maps = g_os_counters.maps.load(std::memory_order_relaxed);
  out->os_releases = g_os_counters.releases.load(std::memory_order_relaxed);
}

void PrintReport(int fd) {
  spanalloc_stats s;
  GatherStats(&s);
  Print(fd, "------------------------------------------------ spanalloc report\n");
  Print(fd, "%12.1f MiB  in use by the program (small %.1f + large %.1f)\n", MiB(s.in_use_small + s.in_use_large),
        MiB(s.in_use_small), MiB(s.in_use_large));
  Print(fd, "%12.1f MiB  free in thread caches (%llu caches)\n", MiB(s.thread_cache_free),
        (unsigned long long)s.thread_caches);
  Print(fd, "%12.1f MiB  free in central lists\n", MiB(s.central_free));
  Print(fd, "%12.1f MiB  free in the page heap (committed)\n", MiB(s.page_heap_free));
  Print(fd, "%12.1f MiB  released to the OS (mapped, not resident)\n", MiB(s.released));
  Print(fd, "%12.1f MiB  metadata (spans, caches, page map leaves: mostly not resident)\n", MiB(s.metadata));
  Print(fd, "%12.1f MiB  mapped in all; %llu mmap calls, %llu madvise releases\n", MiB(s.mapped),
        (unsigned long long)s.os_maps, (unsigned long long)s.os_releases);
  Print(fd, "per size class (only classes with spans):\n");
  Print(fd, "  class   size  spans  span-MiB  free-in-spans  in-slots\n");
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    CentralStats cs = g_central[cl].Stats();
    if (cs.spans == 0 && cs.slot_objects == 0) continue;
    Print(fd, "  %5u  %5u  %5llu  %8.2f  %13llu  %8llu\n", cl, kClassShape[cl].size, (unsigned long long)cs.spans,
          MiB(cs.spans * kClassShape[cl].pages * kPageSize), (unsigned long long)cs.span_free,
          (unsigned long long)cs.slot_objects);
  }
  Print(fd, "options:\n");
  PrintOptions(fd);
  if (g_options.cgroup_limit_bytes)
    Print(fd, "  cgroup memory limit: %.1f MiB\n", MiB(g_options.cgroup_limit_bytes));
}

}  // namespace spanalloc

extern "C" {
SPANALLOC_EXPORT int spanalloc_get_stats(spanalloc_stats *out) {
  spanalloc::EnsureInitialized();
  spanalloc::GatherStats(out);
  return 0;
}
SPANALLOC_EXPORT void spanalloc_print_report(int fd) {
  spanalloc::EnsureInitialized();
  spanalloc::PrintReport(fd);
}
}
