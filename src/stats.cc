#include "stats.h"

#include "allocator.h"
#include "central_list.h"
#include "cpu_cache.h"
#include "metadata_alloc.h"
#include "os_memory.h"
#include "page_heap.h"
#include "thread_cache.h"

namespace spanalloc {

SPANALLOC_RARE bool GatherClassStats(uint32_t cl, ClassStats *out) {
  CentralStats cs = g_central[cl].Stats();
  const ClassShape &shape = kClassShape[cl];
  *out = ClassStats{cl,
                    shape.size,
                    shape.pages,
                    cs.spans,
                    cs.spans * shape.pages * kPageSize,
                    cs.span_free,
                    cs.slot_objects,
                    (cs.span_free + cs.slot_objects) * shape.size};
  return cs.spans != 0 || cs.slot_objects != 0;
}

SPANALLOC_RARE void GatherStats(spanalloc_stats *out) {
  // The calling thread's cache is counted exactly (the others as of their
  // last slow path).
  if (tls_cache != &g_empty_cache) tls_cache->PublishBytes();
  // Outer layers first: an object moving inward meanwhile (cache -> central
  // -> page heap) is then seen at most twice, never missed.
  uint64_t caches = 0, cached = 0;
  ThreadCache::RegistryStats(&caches, &cached);
  // In cpu mode the per-CPU caches stand in for the thread caches (none
  // exist then): one cache per possible CPU, their bytes read racily.
  caches += CpuCache::NumCpus();
  cached += CpuCache::CachedBytes();
  uint64_t central = 0;
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    CentralStats cs = g_central[cl].Stats();
    central += (cs.slot_objects + cs.span_free) * kClassShape[cl].size;
  }
  PageHeapStats ph = g_page_heap.Stats();
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

}  // namespace spanalloc

extern "C" {
SPANALLOC_RARE SPANALLOC_EXPORT int spanalloc_get_stats(spanalloc_stats *out) {
  spanalloc::EnsureInitialized();
  spanalloc::GatherStats(out);
  return 0;
}
}
