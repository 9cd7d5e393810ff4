// spanalloc's allocation paths. The exported entry points (malloc.cc,
// new_delete.cc) and the spanalloc_* API are thin wrappers around these.
//
// How one malloc and one free travel through the layers:
//
//   malloc(n), n <= 32 KiB                               [fast path, no lock]
//     cl = SizeClassOf(n)                  size_classes.h, one table load
//     pop tls_cache->lists[cl]             thread_cache.h; the popped link is
//                                          decoded and checked (free_list.h),
//                                          the object's first word cleared
//     list empty -> ThreadCache::AllocSlow [slow path]
//        -> CentralList::RemoveRange       central lock: one whole batch from a
//                                          transfer slot, or objects from spans
//        -> PageHeap::AllocSmall           page-heap lock: a new span
//        -> OsMap                          mmap, 32 MiB at a time, no lock held
//   malloc(n), n > 32 KiB  -> AllocLarge -> PageHeap::AllocLarge (a whole span)
//
//   free(p)                                              [fast path, no lock]
//     e = ClassEntry(p)                    page_map.h: (span start | class)
//     (p - span start) % size != 0, by the list's magic -> FreeOffPath:
//                                          class 0 (its magic is 0): large span,
//                                          or not ours (fatal error); a thread
//                                          without a cache (magics 0); else
//                                          fatal: not the start of an object
//     p's first word decodes to a link -> FreeSuspect: a double free (fatal),
//                                          unless the full check says no
//     push on tls_cache->lists[cl] (link encoded); list over max_length ->
//     FreeSlow flushes one batch to the central list (one lock round trip
//     per batch).
//
// What each layer amortises: the thread cache turns a lock per object into a
// lock per batch; the central list's transfer slots move a batch in O(1);
// the page heap is entered once per span (many objects) or per large object.
//
// Budget of the fast paths (x86-64, GCC 12, -O2, in libspanalloc.so): malloc
// 19 instructions with its ret for sizes up to 1 KiB (the list's offset is
// one table load; the link check takes 6: decode 2, plausibility 3, clearing
// the first word 1), free 36 (page-map lookup 10, class and list from the
// entry 6, interior-pointer check 6, double-free filter 6, length check 3,
// push and ret 5); neither takes a lock or calls out. bench/fastpath.sh counts them with callgrind: 64 per
// malloc+free pair in pattern (a), 69 in (b), the caller's loop and the calls
// included. History: 62/67 before the encoded lists, 71/76 with them alone,
// 67/72 with the class table by size, one page-map base and slow paths that
// take the list, 64/69 with list offsets in the size table and in class-map
// entries. What remains between this and 50 is structural: the two-level
// page map (a one-level map over a reserved heap range saves ~4), the TLS
// cache pointer through the GOT (2 per call in a shared library), and the
// length/max_length pair (1 with a single counter).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "common.h"
#include "lifecycle.h"
#include "free_list.h"
#include "page_map.h"
#include "size_classes.h"
#include "thread_cache.h"

namespace spanalloc {

// Large blocks from this size up are moved with mremap by realloc, not copied.
inline constexpr size_t kRemapBytes = size_t{1} << 20;

// ---- slow paths (allocator.cc) ------------------------------------------
SPANALLOC_SAMPLE_PATH void *AllocLarge(size_t n, size_t align, bool want_zero) noexcept;
SPANALLOC_SAMPLE_PATH void FreeNotSmall(void *p, const char *func) noexcept;
SPANALLOC_SAMPLE_PATH void *AllocAligned(size_t align, size_t n) noexcept;
SPANALLOC_SAMPLE_PATH void *ReallocSlow(void *p, size_t n) noexcept;
SPANALLOC_SAMPLE_PATH void *Calloc(size_t count, size_t size) noexcept;
// Usable bytes of block p (0 for null); a fatal report naming func when p is
// not a block's start, or names `freed_fault` when the block is free.
size_t UsableSize(const void *p, const char *func, const char *freed_fault = "use after free") noexcept;
// free_sized / free_aligned_sized (align 0 for none): the size is checked
// against the block (CheckSize), then the block is freed.
void FreeSized(void *p, size_t n, size_t align = 0, const char *func = "free_sized") noexcept;
// A fatal report naming func unless n (and align, 0 if none) is a size block
// p could have been requested with: malloc/new of n, an aligned allocation,
// or a realloc to n that kept the block.
void CheckSize(const void *p, size_t n, size_t align, const char *func) noexcept;

// ---- fast paths ---------------------------------------------------------

// True when p, in a small span with class-map entry e (class != 0), is the
// start of an object: (p - span start) % size == 0, by the class's magic.
SPANALLOC_INLINE bool IsObjectStart(const void *p, uint64_t e) {
  uint64_t off = reinterpret_cast<uintptr_t>(p) - EntrySpanStart(e);
  uint64_t magic = kClassMagic[EntryClass(e)];
  return off * magic < magic;
}

// The current thread's list at byte offset list_off (class << 5).
SPANALLOC_INLINE FreeList &ListAt(uint64_t list_off) {
  return *reinterpret_cast<FreeList *>(reinterpret_cast<char *>(tls_cache->lists) + list_off);
}

// Pops the head of list l. Its link is checked for plausibility (free_list.h)
// and reported, never followed, when it was overwritten; the object's first
// word is cleared, so that it never reads as a link.
SPANALLOC_INLINE void *AllocFromList(FreeList &l) {
  void *p = l.head;
  if (SPANALLOC_UNLIKELY(p == nullptr)) return ThreadCache::AllocSlowList(&l);  // sets ENOMEM
  void *next = LinkOf(p);
  if (SPANALLOC_UNLIKELY(!LinkIsPlausible(next))) ThreadCache::CorruptLinkList(p, &l);
  l.head = next;
  l.room++;
  // After the list update (LinkWord may alias it, so the order holds): a fork
  // child that finds this thread stopped here sees p off the list, never a
  // cleared link on it.
  *static_cast<LinkWord *>(p) = 0;
  return p;
}

SPANALLOC_INLINE void *AllocSmall(uint32_t cl) { return AllocFromList(tls_cache->lists[cl]); }

// Requests above 1 KiB: medium classes or a large span (allocator.cc).
SPANALLOC_SAMPLE_PATH void *AllocAbove1K(size_t n) noexcept;

SPANALLOC_INLINE void *Alloc(size_t n) {
  if (SPANALLOC_LIKELY(n <= 1024)) return AllocFromList(ListAt(kSmallListOffset[n]));
  return AllocAbove1K(n);
}

// Reports an interior pointer and aborts.
SPANALLOC_COLD void FreeMisuse(void *p, const char *func) noexcept;
// free() of p (class-map entry e) off the fast path: p not in a small span
// (FreeNotSmall), an interior pointer (FreeMisuse), or a thread without a
// cache (checked as the fast path checks, then ThreadCache::FreeSlow).
// Declared as returning so the fast path can reach it by a tail jump.
SPANALLOC_NOINLINE void FreeOffPath(void *p, uint64_t e, const char *func) noexcept;
// The freed block's first word decodes to a plausible link: a double free,
// unless the program's data happens to look like one (free_list.h). Checks
// in full, reports, or frees the block as usual.
SPANALLOC_COLD void FreeSuspect(void *p, FreeList *l, const char *func) noexcept;

// The free-list filter of free(): a first word that decodes to a canonical
// address (bits 63..47 clear). Cheaper than the full plausibility test and
// enough here: a live block's first word passes it with probability 2^-17
// (then FreeSuspect tells the two apart), a free block's always does.
SPANALLOC_INLINE bool MayBeFree(uint64_t decoded) { return (decoded >> 47) == 0; }

// off * l.magic, with the magic read from the list by the multiply itself
// (GCC otherwise loads it into a register first: one instruction more).
SPANALLOC_INLINE uint64_t TimesMagic(uint64_t off, const FreeList &l) {
  asm("imulq %1, %0" : "+r"(off) : "m"(l.magic));
  return off;
}

SPANALLOC_INLINE void FreeWithEntry(void *p, uint64_t e, const char *func) {
  uint64_t list_off = e & kEntryClassBits;
  uint64_t off = reinterpret_cast<uintptr_t>(p) + list_off - e;  // p - span start (e's other low bits are 0)
  FreeList &l = ListAt(list_off);
  // One test for three cases (FreeOffPath tells them apart): p not in a small
  // span (class 0, whose list's magic is 0), a thread without a cache
  // (g_empty_cache: every magic 0), and p not the start of an object.
  if (SPANALLOC_UNLIKELY(TimesMagic(off, l) >= l.magic)) return FreeOffPath(p, e, func);
  uint64_t key = LinkKey(p);
  if (SPANALLOC_UNLIKELY(MayBeFree(*static_cast<LinkWord *>(p) ^ key))) return FreeSuspect(p, &l, func);
  if (SPANALLOC_UNLIKELY(--l.room < 0)) return ThreadCache::FreeSlowList(p, &l);  // it adds room back
  *static_cast<LinkWord *>(p) = reinterpret_cast<uintptr_t>(l.head) ^ key;
  l.head = p;
}

SPANALLOC_INLINE void Free(void *p, const char *func = "free") { FreeWithEntry(p, ClassEntry(p), func); }

// realloc's common case, a block that already fits (a string grown a byte
// at a time): no call, no lock. Everything else, misuse included, is
// ReallocSlow's. n >= old / 2 keeps the block from wasting more than half
// and sends n == 0 (free) to the slow path.
SPANALLOC_INLINE void *Realloc(void *p, size_t n) {
  uint64_t e = ClassEntry(p);
  if (uint32_t cl = EntryClass(e); cl != 0) {
    size_t old = ClassSize(cl);
    if (n <= old && n >= old / 2 && IsObjectStart(p, e) && !MayBeFree(*static_cast<const LinkWord *>(p) ^ LinkKey(p)))
      return p;
  } else if (p != nullptr) {
    Span *s = SpanOf(p);
    if (s != nullptr && s->state == SpanState::kLarge && s->start_addr() == reinterpret_cast<uintptr_t>(p) &&
        n <= s->bytes() && n >= s->bytes() / 2)
      return p;
  }
  return ReallocSlow(p, n);
}

}  // namespace spanalloc
