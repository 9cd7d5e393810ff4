// spanalloc's allocation paths. The exported entry points (malloc.cc,
// new_delete.cc) and the spanalloc_* API are thin wrappers around these.
//
// How one malloc and one free travel through the layers:
//
//   malloc(n), n <= 32 KiB                               [fast path, no lock]
//     cl = SizeClassOf(n)                  size_classes.h, one table load
//     pop tls_cache->lists[cl]             thread_cache.h
//     list empty -> ThreadCache::AllocSlow [slow path]
//        -> CentralList::RemoveRange       central lock: one whole batch from a
//                                          transfer slot, or objects from spans
//        -> PageHeap::AllocSmall           page-heap lock: a new span
//        -> OsMap                          mmap, 32 MiB at a time, no lock held
//   malloc(n), n > 32 KiB  -> AllocLarge -> PageHeap::AllocLarge (a whole span)
//
//   free(p)                                              [fast path, no lock]
//     e = ClassEntry(p)                    page_map.h: (span start | class)
//     class 0 -> FreeNotSmall: large span, or not ours (fatal error)
//     (p - span start) % size != 0 -> fatal: not the start of an object
//     p == head of the list -> fatal: double free
//     push on tls_cache->lists[cl]; list over max_length -> FreeSlow flushes
//     one batch to the central list (one lock round trip per batch).
//
// What each layer amortises: the thread cache turns a lock per object into a
// lock per batch; the central list's transfer slots move a batch in O(1);
// the page heap is entered once per span (many objects) or per large object.
//
// Budget of the fast paths (x86-64, GCC 12, -O2, in libspanalloc.so): malloc
// 17 instructions for sizes up to 1 KiB, free 33, of which the two-level
// page-map lookup takes ~11 and the two misuse checks ~8; neither takes a
// lock or calls out. bench/fastpath.sh counts them with callgrind
// (62 per malloc+free pair with the caller's loop and the calls included).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "common.h"
#include "page_map.h"
#include "size_classes.h"
#include "thread_cache.h"

namespace spanalloc {

class ThreadCache;

void EnsureInitialized() noexcept;
// Arranges for ThreadCache::DestroyCurrent to run when the thread exits.
void RegisterThreadExit(ThreadCache *tc);

// Large blocks from this size up are moved with mremap by realloc, not copied.
inline constexpr size_t kRemapBytes = size_t{1} << 20;

// ---- slow paths (allocator.cc) ------------------------------------------
void *AllocLarge(size_t n, size_t align, bool want_zero) noexcept;
void FreeNotSmall(void *p, const char *func) noexcept;
void *AllocAligned(size_t align, size_t n) noexcept;
void *ReallocSlow(void *p, size_t n) noexcept;
void *Calloc(size_t count, size_t size) noexcept;
// Usable bytes of block p (0 for null); a fatal report naming func when p is
// not a block's start.
size_t UsableSize(const void *p, const char *func) noexcept;
void FreeSized(void *p, size_t n) noexcept;
SPANALLOC_COLD void *FailNoMemory() noexcept;

// ---- fast paths ---------------------------------------------------------

// True when p, in a small span with class-map entry e (class != 0), is the
// start of an object: (p - span start) % size == 0, by the class's magic.
SPANALLOC_INLINE bool IsObjectStart(const void *p, uint64_t e) {
  uint64_t off = reinterpret_cast<uintptr_t>(p) - (e & ~kClassMask);
  uint64_t magic = kClassMagic[e & kClassMask];
  return off * magic < magic;
}

SPANALLOC_INLINE void *AllocSmall(uint32_t cl) {
  FreeList &l = tls_cache->lists[cl];
  void *p = l.head;
  if (SPANALLOC_UNLIKELY(p == nullptr)) return ThreadCache::AllocSlow(cl);  // sets ENOMEM
  l.head = *static_cast<void **>(p);
  l.length--;
  return p;
}

// Requests above 1 KiB: medium classes or a large span (allocator.cc).
void *AllocAbove1K(size_t n) noexcept;

SPANALLOC_INLINE void *Alloc(size_t n) {
  if (SPANALLOC_LIKELY(n <= 1024)) return AllocSmall(kSmallIndex[(n + 7) >> 3]);
  return AllocAbove1K(n);
}

// Reports a misuse found on the free fast path and aborts. Declared as
// returning so the fast path can reach it by a tail jump (no stack frame).
SPANALLOC_COLD void FreeMisuse(void *p, const char *func, int double_free) noexcept;

SPANALLOC_INLINE void FreeWithEntry(void *p, uint64_t e, const char *func) {
  uint32_t cl = uint32_t(e & kClassMask);
  if (SPANALLOC_UNLIKELY(cl == 0)) return FreeNotSmall(p, func);
  uint64_t off = reinterpret_cast<uintptr_t>(p) - (e & ~kClassMask);
  FreeList &l = tls_cache->lists[cl];
  if (SPANALLOC_UNLIKELY(off * l.magic >= l.magic)) return FreeMisuse(p, func, 0);
  if (SPANALLOC_UNLIKELY(p == l.head)) return FreeMisuse(p, func, 1);
  if (SPANALLOC_UNLIKELY(l.length >= l.max_length)) return ThreadCache::FreeSlow(p, cl);
  *static_cast<void **>(p) = l.head;
  l.head = p;
  l.length++;
}

SPANALLOC_INLINE void Free(void *p, const char *func = "free") { FreeWithEntry(p, ClassEntry(p), func); }

// realloc's common case, a block that already fits (a string grown a byte
// at a time): no call, no lock. Everything else, misuse included, is
// ReallocSlow's. n >= old / 2 keeps the block from wasting more than half
// and sends n == 0 (free) to the slow path.
SPANALLOC_INLINE void *Realloc(void *p, size_t n) {
  uint64_t e = ClassEntry(p);
  if (uint32_t cl = uint32_t(e & kClassMask); cl != 0) {
    size_t old = ClassSize(cl);
    if (n <= old && n >= old / 2 && IsObjectStart(p, e)) return p;
  } else if (p != nullptr) {
    Span *s = SpanOf(p);
    if (s != nullptr && s->state == SpanState::kLarge && s->start_addr() == reinterpret_cast<uintptr_t>(p) &&
        n <= s->bytes() && n >= s->bytes() / 2)
      return p;
  }
  return ReallocSlow(p, n);
}

}  // namespace spanalloc
