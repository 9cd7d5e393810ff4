// Large objects, the compound operations (realloc, calloc, aligned
// allocation) and the spanalloc_* API. Start-up, thread exit and fork are
// lifecycle.cc's.
#include "allocator.h"

#include <unistd.h>

#include <atomic>
#include <cstring>

#include "central_list.h"
#include "cpu_cache.h"
#include "options.h"
#include "page_heap.h"
#include "sampler.h"
#include "scavenger.h"
#include "spanalloc.h"
#include "report.h"

namespace spanalloc {

void *AllocAbove1K(size_t n) noexcept {
  if (n <= kMaxSmallSize) return AllocSmall(kMediumIndex[(n - 1024 + 127) >> 7]);
  return AllocLarge(n, kPageSize, false);
}

// ---- large objects --------------------------------------------------------

void *AllocLarge(size_t n, size_t align, bool want_zero) noexcept {
  if (n > kMaxRequest) return FailNoMemory();
  EnsureInitialized();
  bool zeroed = false;
  Span *s = g_page_heap.AllocLarge(PagesFor(n ? n : 1), align >> kPageShift, &zeroed);
  if (s == nullptr) return FailNoMemory();
  void *p = PageAddr(s->start);
  if (want_zero && !zeroed) memset(p, 0, n);
  if (SPANALLOC_UNLIKELY(g_sampler.on)) SampleLarge(s);
  return p;
}

void FreeMisuse(void *p, const char *func) noexcept {
  FatalMisuse(func, p, "invalid pointer", "not the start of an object");
}

SPANALLOC_SAMPLE_PATH void FreeOutsideFlatMap(void *p, const char *func) noexcept { FreeWithEntry(p, RootClassEntry(p), func); }

SPANALLOC_SAMPLE_PATH void FreeOffPath(void *p, uint64_t e, const char *func) noexcept {
  uint32_t cl = EntryClass(e);
  if (cl == 0) return FreeNotSmall(p, func);
  if (!IsObjectStart(p, e)) return FreeMisuse(p, func);
  // The thread has no cache (g_empty_cache, whose magics are 0): the fast
  // path's remaining checks, then the slow path (which creates one).
  FreeList *l = &tls_cache->lists[cl];
  if (MayBeFree(p)) return FreeSuspect(p, l, func);
  ThreadCache::FreeSlow(p, cl);
}

void FreeSuspect(void *p, FreeList *list, const char *func) noexcept {
  FreeList &l = *list;
  uint32_t cl = uint32_t(list - tls_cache->lists);
  if (FreeBlockLinkIsValid(LinkOf(p), cl)) {
    // Its first word is a valid link: the block is free. Say where, if it is
    // on this thread's list (walked as far as its links hold).
    const char *where = "already free: freed by another thread, or back in a central batch";
    if (CpuCache::On() && CpuCache::OnCurrentCpuList(p, cl)) where = "already on this CPU's free list";
    void *q = l.head;
    for (uint32_t i = 0, n = l.length(); q != nullptr && q != ListEnd() && i < n; i++) {
      if (q == p) {
        where = "already on this thread's free list";
        break;
      }
      q = LinkOf(q);
      if (!LinkIsValid(q, cl)) break;
    }
    FatalMisuse(func, p, "double free", where, ClassSize(cl));
  }
  // The program's data only looked like a link: an ordinary free.
  if (l.room <= 0) return ThreadCache::FreeSlow(p, cl);
  SetLink(p, l.head);
  l.head = p;
  l.room--;
}

// True when small block p (class entry e) is free: its first word is a
// valid link (free_list.h).
bool SmallBlockIsFree(const void *p, uint64_t e) noexcept {
  return MayBeFree(p) && FreeBlockLinkIsValid(LinkOf(p), EntryClass(e));
}

// The span of large block p, or a fatal report of why p is not one: not
// ours, already free (`freed_fault`: most likely a double free), or inside a
// block.
Span *LargeSpanOf(const void *p, const char *func, const char *freed_fault = "double free") noexcept {
  Span *s = SpanOf(p);
  if (s == nullptr || !s->contains(p)) FatalMisuse(func, p, "invalid pointer", "not allocated by spanalloc");
  if (s->state == SpanState::kFree || s->state == SpanState::kReleasing)
    FatalMisuse(func, p, freed_fault, "large block, already free");
  if (s->state != SpanState::kLarge || reinterpret_cast<uintptr_t>(p) != s->start_addr())
    FatalMisuse(func, p, "invalid pointer", "not the start of an object");
  return s;
}

// free() of a pointer whose page holds no small span: a large object, null,
// or not ours.
void FreeNotSmall(void *p, const char *func) noexcept {
  if (p == nullptr) return;
  if (Span *sampled = SpanOf(p); sampled != nullptr && sampled->sample != nullptr) return FreeSampled(sampled, p, func);
  Span *s = LargeSpanOf(p, func);
  int saved = errno;
  g_page_heap.Free(s);
  g_scavenger.StartIfRequested();  // no lock held here
  errno = saved;
}

size_t UsableSize(const void *p, const char *func, const char *freed_fault) noexcept {
  if (p == nullptr) return 0;
  uint64_t e = ClassEntry(p);
  if (uint32_t cl = EntryClass(e); cl != 0) {
    if (!IsObjectStart(p, e)) FatalMisuse(func, p, "invalid pointer", "not the start of an object");
    if (SmallBlockIsFree(p, e)) FatalMisuse(func, p, freed_fault, "already free", ClassSize(cl));
    return ClassSize(cl);
  }
  if (Span *sampled = SpanOf(p); sampled != nullptr && sampled->sample != nullptr)
    return SampledUsableSize(sampled, p, func, freed_fault);
  return LargeSpanOf(p, func, freed_fault)->bytes();
}

void CheckSize(const void *p, size_t n, size_t align, const char *func) noexcept {
  size_t usable = UsableSize(p, func, "double free");
  uint64_t e = ClassEntry(p);
  bool ok;
  if (uint32_t cl = EntryClass(e); cl != 0) {
    ok = n <= usable && (SizeClassOf(n) == cl || 2 * n >= usable ||
                         (align > 8 && align <= kPageSize && SizeClassForAligned(n ? n : 1, align) == cl));
  } else {
    ok = n <= usable && (PagesFor(n ? n : 1) == PagesFor(usable) || 2 * n >= usable);
  }
  if (!ok) FatalMisuse(func, p, "size mismatch", "freed with size", usable, n);
}

void FreeSized(void *p, size_t n, size_t align, const char *func) noexcept {
  if (p == nullptr) return;
  // The size must fit the block; a mismatch means the caller's bookkeeping
  // is wrong, and trusting it could corrupt the heap.
  CheckSize(p, n, align, func);
  Free(p, func);
}

// ---- compound operations --------------------------------------------------

void *AllocAligned(size_t align, size_t n) noexcept {
  if (align <= 8 || (align <= kMinAlign && n > 8)) return Alloc(n);
  if (n > kMaxRequest || align > kMaxRequest) return FailNoMemory();
  if (n <= kMaxSmallSize && align <= kPageSize) {
    uint32_t cl = SizeClassForAligned(n ? n : 1, align);
    if (cl != 0) return AllocSmall(cl);
  }
  return AllocLarge(n, align < kPageSize ? kPageSize : align, false);
}

void *Calloc(size_t count, size_t size) noexcept {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) return FailNoMemory();
  if (total <= kMaxSmallSize) {
    void *p = AllocSmall(SizeClassOf(total));
    if (p != nullptr) memset(p, 0, total);
    return p;
  }
  return AllocLarge(total, kPageSize, true);
}

void *ReallocLarge(void *p, size_t n) noexcept;

void *ReallocSlow(void *p, size_t n) noexcept {
  if (p == nullptr) return Alloc(n);
  if (n == 0) {  // glibc: frees and returns NULL
    Free(p, "realloc");
    return nullptr;
  }
  size_t old = UsableSize(p, "realloc", "double free");
  // Keep the block when the new size fits and does not waste more than half.
  // (old is a class size or a whole number of pages, so the same class or
  // page count means the block already is what a new one would be.)
  if (n <= old) {
    if (n >= old / 2) return p;
    if (old <= kMaxSmallSize && SizeClassOf(n) == SizeClassOf(old)) return p;
  }
  if (n > kMaxRequest) return FailNoMemory();
  if (old > kMaxSmallSize && n > kMaxSmallSize) {
    if (void *q = ReallocLarge(p, n)) return q;
  }
  void *q = Alloc(n);
  if (q == nullptr) return nullptr;  // errno set; p untouched, as C requires
  memcpy(q, p, old < n ? old : n);
  Free(p, "realloc");
  return q;
}

// A large block to a new large size: resized in place (shrinking, or
// growing into a free neighbour); else copied into a committed free span of
// the page heap when one fits (the copy costs less than faulting in the new
// pages: bench_realloc's doubling phase faulted every 64 MiB round afresh);
// else, from kRemapBytes up, moved page by page with mremap. nullptr: the
// caller copies into a new block.
void *ReallocLarge(void *p, size_t n) noexcept {
  Span *s = SpanOf(p);                       // UsableSize validated p
  if (s->sample != nullptr) return nullptr;  // sampled: a new block, so the sample's free is seen
  Length pages = PagesFor(n);
  if (g_page_heap.ResizeInPlace(s, pages)) return p;
  if (pages > s->npages) {
    if (Span *t = g_page_heap.AllocLargeCommitted(pages)) {
      void *q = PageAddr(t->start);
      memcpy(q, p, s->bytes());
      int saved = errno;  // a release on the way may set it (as in FreeNotSmall)
      g_page_heap.Free(s);
      g_scavenger.StartIfRequested();  // no lock held here
      errno = saved;
      return q;
    }
  }
  if (s->bytes() < kRemapBytes) return nullptr;
  Span *moved = g_page_heap.Remap(s, pages);
  return moved ? PageAddr(moved->start) : nullptr;
}

}  // namespace spanalloc

// ---- spanalloc_* API --------------------------------------------------------

using namespace spanalloc;

extern "C" {

SPANALLOC_EXPORT void *spanalloc_malloc(size_t size) { return Alloc(size); }
SPANALLOC_EXPORT void spanalloc_free(void *ptr) {
  int saved = errno;
  Free(ptr, "spanalloc_free");
  errno = saved;
}
SPANALLOC_EXPORT void *spanalloc_calloc(size_t count, size_t size) { return Calloc(count, size); }
SPANALLOC_EXPORT void *spanalloc_realloc(void *ptr, size_t size) { return Realloc(ptr, size); }
SPANALLOC_EXPORT void *spanalloc_aligned_alloc(size_t alignment, size_t size) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    errno = EINVAL;
    return nullptr;
  }
  return AllocAligned(alignment, size);
}
SPANALLOC_EXPORT int spanalloc_posix_memalign(void **out, size_t alignment, size_t size) {
  if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
  int saved = errno;
  void *p = AllocAligned(alignment, size);
  if (p == nullptr) {
    errno = saved;
    return ENOMEM;
  }
  *out = p;
  return 0;
}
SPANALLOC_EXPORT void spanalloc_free_sized(void *ptr, size_t size) {
  int saved = errno;
  FreeSized(ptr, size);
  errno = saved;
}
SPANALLOC_EXPORT size_t spanalloc_usable_size(const void *ptr) { return UsableSize(ptr, "spanalloc_usable_size"); }
SPANALLOC_RARE SPANALLOC_EXPORT size_t spanalloc_release_free_memory(void) {
  EnsureInitialized();
  if (tls_cache != &g_empty_cache) tls_cache->FlushAll();
  CpuCache::Drain(0);
  for (uint32_t cl = 1; cl < kNumClasses; cl++) g_central[cl].ReleaseSlots();
  size_t released = g_page_heap.ReleaseAll();
  // Span records of a heap that was once much bigger: their free pages go too.
  return released + g_page_heap.span_alloc().ReleaseFreePages();
}

}  // extern "C"
