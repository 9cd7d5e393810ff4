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
//     class 0 -> FreeSlow: large span, or not ours (fatal error)
//     (p - span start) % size != 0 -> fatal: not the start of an object
//     p == head of the list -> fatal: double free
//     push on tls_cache->lists[cl]; list over max_length -> FreeSlow flushes
//     one batch to the central list (one lock round trip per batch).
//
// What each layer amortises: the thread cache turns a lock per object into a
// lock per batch; the central list's transfer slots move a batch in O(1);
// the page heap is entered once per span (many objects) or per large object.
//
// Budget of the fast paths: malloc ~10 instructions, free ~20 (with its two
// misuse checks); bench/fastpath.sh counts them with callgrind.
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

void EnsureInitialized();
// Arranges for ThreadCache::DestroyCurrent to run when the thread exits.
void RegisterThreadExit(ThreadCache *tc);

// ---- slow paths (allocator.cc) ------------------------------------------
void *AllocLarge(size_t n, size_t align, bool want_zero);
void FreeNotSmall(void *p, const char *func);
void *AllocAligned(size_t align, size_t n);
void *Realloc(void *p, size_t n);
void *Calloc(size_t count, size_t size);
size_t UsableSize(const void *p);
void FreeSized(void *p, size_t n);
SPANALLOC_COLD void *FailNoMemory();

// ---- fast paths ---------------------------------------------------------

SPANALLOC_INLINE void *AllocSmall(uint32_t cl) {
  FreeList &l = tls_cache->lists[cl];
  void *p = l.head;
  if (SPANALLOC_UNLIKELY(p == nullptr)) {
    p = ThreadCache::AllocSlow(cl);
    if (p == nullptr) return FailNoMemory();
    return p;
  }
  l.head = *static_cast<void **>(p);
  l.length--;
  return p;
}

SPANALLOC_INLINE void *Alloc(size_t n) {
  if (SPANALLOC_LIKELY(n <= kMaxSmallSize)) return AllocSmall(SizeClassOf(n));
  return AllocLarge(n, kPageSize, false);
}

SPANALLOC_INLINE void FreeWithEntry(void *p, uint64_t e, const char *func) {
  uint32_t cl = uint32_t(e & kClassMask);
  if (SPANALLOC_UNLIKELY(cl == 0)) return FreeNotSmall(p, func);
  uint64_t off = reinterpret_cast<uintptr_t>(p) - (e & ~kClassMask);
  if (SPANALLOC_UNLIKELY(off * kClassMagic[cl] >= kClassMagic[cl]))
    FatalMisuse(func, p, "invalid pointer (not the start of an object)");
  FreeList &l = tls_cache->lists[cl];
  if (SPANALLOC_UNLIKELY(p == l.head)) FatalMisuse(func, p, "double free");
  if (SPANALLOC_UNLIKELY(l.length >= l.max_length)) return ThreadCache::FreeSlow(p, cl);
  *static_cast<void **>(p) = l.head;
  l.head = p;
  l.length++;
}

SPANALLOC_INLINE void Free(void *p, const char *func = "free") { FreeWithEntry(p, ClassEntry(p), func); }

}  // namespace spanalloc
