#include "page_heap.h"

#include <time.h>

#include "options.h"
#include "os_memory.h"
#include "page_heap_impl.h"
#include "page_map.h"
#include "scavenger.h"

namespace spanalloc {

uint64_t NowMillis() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

// ---- the production Env: plain calls, inlined into the page heap ---------

Span *PageHeapEnv::SpanOfPage(PageId page) const { return spanalloc::SpanOfPage(page); }
bool PageHeapEnv::PageMapEnsure(PageId first, Length n) { return spanalloc::PageMapEnsure(first, n); }
void PageHeapEnv::PageMapSetSpan(PageId page, Span *s) { spanalloc::PageMapSetSpan(page, s); }
void PageHeapEnv::PageMapSetRange(PageId first, Length n, Span *s, uint64_t entry, bool set_class) {
  spanalloc::PageMapSetRange(first, n, s, entry, set_class);
}
void PageHeapEnv::PageMapReleaseInterior(PageId first, Length n) { spanalloc::PageMapReleaseInterior(first, n); }
// The heap's growth (its only mapping): placed in the class map's flat view
// while that has room (page_map.h).
void *PageHeapEnv::OsMap(size_t bytes, size_t align) { return spanalloc::PageMapHeapMap(bytes, align); }
bool PageHeapEnv::OsAdviseHugePages(void *p, size_t bytes) { return spanalloc::OsAdviseHugePages(p, bytes); }
bool PageHeapEnv::OsRelease(void *p, size_t bytes) { return spanalloc::OsRelease(p, bytes); }
void PageHeapEnv::OsUnmap(void *p, size_t bytes) { spanalloc::OsUnmap(p, bytes); }
bool PageHeapEnv::OsRemapInPlace(void *p, size_t old_bytes, size_t new_bytes) {
  return spanalloc::OsRemapInPlace(p, old_bytes, new_bytes);
}
void *PageHeapEnv::OsReserve(size_t bytes, size_t align) { return spanalloc::OsReserve(bytes, align); }
bool PageHeapEnv::OsRemapMoveTo(void *p, size_t old_bytes, size_t new_bytes, void *target) {
  return spanalloc::OsRemapMoveTo(p, old_bytes, new_bytes, target);
}
void PageHeapEnv::OsUnreserve(void *target, size_t bytes) { spanalloc::OsUnreserve(target, bytes); }
bool PageHeapEnv::OsMapFixed(void *p, size_t bytes) { return spanalloc::OsMapFixed(p, bytes); }
uint64_t PageHeapEnv::NowMillis() const { return spanalloc::NowMillis(); }
const Options &PageHeapEnv::options() const { return g_options; }
uint64_t PageHeapEnv::RetainBytes() const { return spanalloc::RetainBytes(); }
bool PageHeapEnv::OnScavengerThread() const { return spanalloc::OnScavengerThread(); }
void PageHeapEnv::NotifyScavenger(uint64_t excess) { g_scavenger.Notify(excess); }

template class PageHeapT<PageHeapEnv>;

constinit PageHeap g_page_heap;

}  // namespace spanalloc
