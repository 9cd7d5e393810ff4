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
//     list empty (its head, ListEnd(), fails the link check)
//        -> ThreadCache::AllocSlow         [slow path]
//        -> CentralList::RemoveRange       central lock: one whole batch from a
//                                          transfer slot, or objects from spans
//        -> PageHeap::AllocSmall           page-heap lock: a new span
//        -> OsMap                          mmap, 32 MiB at a time, no lock held
//   malloc(n), n > 32 KiB  -> AllocLarge -> PageHeap::AllocLarge (a whole span)
//
//   free(p)                                              [fast path, no lock]
//     e = flat class map[p >> 13]          page_map.h: (span start | class);
//                                          above the flat view -> through the root
//     p not one of its span's objects,     -> FreeOffPath:
//     by the list's magic and limit        class 0 (its limit is 0): large span,
//                                          or not ours (fatal error); a thread
//                                          without a cache (limits 0); else
//                                          fatal: not the start of an object
//     p's first word decodes to a link -> FreeSuspect: a double free (fatal),
//                                          unless the full check says no
//     push on tls_cache->lists[cl] (link encoded); no room left ->
//     FreeSlow flushes one batch to the central list (one lock round trip
//     per batch).
//
// What each layer amortises: the thread cache turns a lock per object into a
// lock per batch; the central list's transfer slots move a batch in O(1);
// the page heap is entered once per span (many objects) or per large object.
//
// Budget of the fast paths (x86-64, GCC 12, -O2, in libspanalloc.so), from
// the disassembly; neither takes a lock or calls out.
//   malloc, n <= 1 KiB: 16 = size test 2 (cmp, ja) + list offset by size 2
//     (lea table, movzwl) + this thread's list 2 (TLS offset from the GOT,
//     add %fs:) + pop and decode 4 (head, its first word, xor slot, xor
//     secret) + link check 2 (test against the mask in memory, jne; it also
//     finds the empty list, whose head is ListEnd()) + room, head, clearing
//     the first word 3 + ret 1.
//   free: 23 = flat lookup 5 (copy, shr, cmp limit, jae, the entry's load at
//     the map's fixed address) + list and offset 5 (TLS offset, movzwl list
//     offset, lea 8p + offset, add %fs:, sub entry: page_map.h's layout) +
//     object-start test 3 (imul by the list's magic, cmp with its limit, jae; it also sends
//     class 0 and threads without a cache off the fast path) + double-free
//     filter 2 (cmpw of the first word's top 16 bits with the secret's, an
//     immediate; je: MayBeFree) + room 2 (subl, js) + push 5 (secret, xor slot, xor head,
//     two stores) + ret 1.
//   sized delete / free_sized up to 1 KiB: free's 23 + 6 (size test, table,
//     class compare).
// bench/fastpath.sh (callgrind) counts 48 per malloc+free pair in pattern
// (a) and 53 in (b): these 39 and the caller's loop, 9 in (a) and 14 in (b)
// with the two calls and their PLT jumps. History: 62/67 before the encoded
// lists, 71/76 with them alone, 67/72 with the class table by size, 64/69
// with list offsets in the size table and class-map entries, 61/66 with one
// magic test for class 0, threads without a cache and interior pointers,
// 59/64 with a room counter, 55/60 with the flat class map, 53/58 with
// ListEnd(), 52/57 with the offset by lea, 51/56 with the entry's start
// shifted by 3, 50/55 with the map at a fixed address, 49/54 with the
// double-free filter on the first word's top 16 bits (a compare, no xor),
// 48/53 with the secret's top 16 bits a constant (an immediate operand).
// What 50 in (b) would take: 3 fewer (its loop alone is 14, leaving the
// allocator 36 of today's 39). Of the 39, the hardening takes 14 --
// object-start test 5 (lea, sub, imul, cmp, jae), double-free filter 2
// (cmpw, je), link check 2, clearing the first word 1, link
// encoding 4 (xor slot and secret in malloc and in free) -- the flat
// view's bound 2, and the shared library 1 per call (the TLS offset's GOT
// load; libspanalloc.a's PIC objects keep it too). 50 in (b) therefore means
// giving up a check the trust issue requires by default (e.g. the
// object-start test only with SPANALLOC_CHECKS=full: 5). Counted from the
// disassembly, not built: the lists in static TLS (saves nothing now that
// free's add reads %fs: itself; 2.3 KiB of initial-exec TLS would also break
// a dlopen'ed libspanalloc).
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
// start of one of its objects: (p - span start) % size == 0 and not in the
// span's tail, by the class's magic and limit (size_classes.h).
SPANALLOC_INLINE bool IsObjectStart(const void *p, uint64_t e) {
  uint64_t off = reinterpret_cast<uintptr_t>(p) - EntrySpanStart(e);
  uint32_t cl = EntryClass(e);
  return off * kClassMagic[cl] < kClassLimit[cl];
}

// The current thread's list at byte offset list_off (class << 5).
SPANALLOC_INLINE FreeList &ListAt(uint64_t list_off) {
  return *reinterpret_cast<FreeList *>(reinterpret_cast<char *>(tls_cache->lists) + list_off);
}

// Pops the head of list l. Its link is checked for plausibility (free_list.h)
// and reported, never followed, when it was overwritten; the same check finds
// an empty list, whose head is ListEnd(). The object's first word is cleared,
// so that it never reads as a link.
SPANALLOC_INLINE void *AllocFromList(FreeList &l) {
  void *p = l.head;
  void *next = LinkOf(p);
  if (SPANALLOC_UNLIKELY(!LinkIsPlausible(next))) return ThreadCache::PopImplausible(p, &l);  // may set ENOMEM
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
SPANALLOC_NOINLINE SPANALLOC_SAMPLE_PATH void FreeOffPath(void *p, uint64_t e, const char *func) noexcept;
// The freed block's first word decodes to a plausible link: a double free,
// unless the program's data happens to look like one (free_list.h). Checks
// in full, reports, or frees the block as usual.
SPANALLOC_COLD void FreeSuspect(void *p, FreeList *l, const char *func) noexcept;

// The free-list filter of free(): block p's first word decodes to a link
// whose bits 63..48 are clear, as every link's are (user addresses, and
// null). Cheaper than the full plausibility test and enough here: a live
// block's first word passes it with probability 2^-16 (then FreeSuspect
// tells the two apart; a cleared word, a pointer, a small or negative
// integer never pass: the secret's bit 63 is set and its bit 62 clear), a
// free block's always does. Those bits of a decoded link are the stored
// word's xor the secret's, whatever the slot (every block lies below 2^47),
// so the filter compares bytes 6..7 of the block with the secret's top 16
// bits, a constant (free_list.h, kSecretTop16): one cmpw with an immediate
// operand (a load of the secret's bits first cost one instruction more). A program that has just stored a byte
// or an int at p[0] does not overlap that load, which the CPU then forwards
// from malloc's clearing store; a whole-word load would wait for both
// stores to reach the cache (churn's phase A -- malloc, p[0] = c, free --
// took x 1.4 the time).
SPANALLOC_INLINE bool MayBeFree(const void *p) { return LinkTop16(p) == kSecretTop16; }

// off * l.magic, with the magic read from the list by the multiply itself
// (GCC otherwise loads it into a register first: one instruction more).
SPANALLOC_INLINE uint64_t TimesMagic(uint64_t off, const FreeList &l) {
  asm("imulq %1, %0" : "+r"(off) : "m"(l.magic));
  return off;
}

SPANALLOC_INLINE void FreeWithEntry(void *p, uint64_t e, const char *func) {
  uint64_t list_off = uint16_t(e);  // movzwl: e's bits 12..15 are 0 (page_map.h)
  // off = 8 * p + list_off - e = 8 * (p - span start), by lea and one sub
  // (GCC otherwise copies list_off, then subtracts and adds), tested against
  // the list's magic and limit for 8 * size.
  uint64_t off;
  asm("leaq (%1,%2,8), %0" : "=r"(off) : "r"(list_off), "r"(p));
  off -= e;
  FreeList &l = ListAt(list_off);
  // One test for three cases (FreeOffPath tells them apart): p not in a small
  // span (class 0, whose list's limit is 0), a thread without a cache
  // (g_empty_cache: every limit 0), and p not the start of one of its span's
  // objects (a slot in the span's tail past the last object included).
  if (SPANALLOC_UNLIKELY(TimesMagic(off, l) >= l.limit)) return FreeOffPath(p, e, func);
  if (SPANALLOC_UNLIKELY(MayBeFree(p))) return FreeSuspect(p, &l, func);
  if (SPANALLOC_UNLIKELY(--l.room < 0)) return ThreadCache::FreeSlowList(p, &l);  // it adds room back
  SetLink(p, l.head);
  l.head = p;
}

// free() of a block outside the class map's flat view (page_map.h): the entry
// through the root, then the fast path as usual.
SPANALLOC_NOINLINE SPANALLOC_SAMPLE_PATH void FreeOutsideFlatMap(void *p, const char *func) noexcept;

SPANALLOC_INLINE void Free(void *p, const char *func = "free") {
  uintptr_t page = reinterpret_cast<uintptr_t>(p) >> kPageShift;
  if (SPANALLOC_UNLIKELY(!InFlatMap(page))) return FreeOutsideFlatMap(p, func);
  FreeWithEntry(p, FlatEntry(page), func);
}

// Sized free (C++ sized delete, free_sized) of a request of n <= 1 KiB in the
// flat view: the class the size asks for (malloc's table) must be the
// block's; then the block is freed as free() does. Otherwise slow() is
// called, nothing done: larger sizes, a block outside the flat view, or a
// class that does not match (a wrong size, or a legitimate one CheckSize
// accepts: a realloc that kept a bigger block, an aligned allocation). A size
// in the block's class is as right as free_sized can tell (CheckSize), so
// this is the full check for these sizes, at 6 instructions more than free().
template <typename Slow>
SPANALLOC_INLINE void FreeSized1K(void *p, size_t n, const char *func, Slow slow) {
  uintptr_t page = reinterpret_cast<uintptr_t>(p) >> kPageShift;
  if (SPANALLOC_UNLIKELY(n > 1024 || !InFlatMap(page))) return slow();
  uint64_t e = FlatEntry(page);
  if (SPANALLOC_UNLIKELY(uint16_t(e) != kSmallListOffset[n])) return slow();
  FreeWithEntry(p, e, func);
}

// realloc's common case, a block that already fits (a string grown a byte
// at a time): no call, no lock. Everything else, misuse included, is
// ReallocSlow's. n >= old / 2 keeps the block from wasting more than half
// and sends n == 0 (free) to the slow path.
SPANALLOC_INLINE void *Realloc(void *p, size_t n) {
  uint64_t e = ClassEntry(p);
  if (uint32_t cl = EntryClass(e); cl != 0) {
    size_t old = ClassSize(cl);
    if (n <= old && n >= old / 2 && IsObjectStart(p, e) && !MayBeFree(p))
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
