// Page map: page number -> span, for every page the heap ever handed out.
//
// Two radix trees with the same shape (2^17 root slots x 2^18 pages per
// leaf = 2^35 pages = the 48-bit user address space in 8 KiB pages):
//   class map -- one 64-bit word per page: (span start address | class << 5)
//                for pages of small spans, 0 otherwise (MakeClassEntry). This is all free() and
//                malloc_usable_size() need on their fast path.
//   span map  -- Span* per page, for the slow paths (large objects,
//                coalescing, validation).
// Concurrency: writers hold the page-heap lock (or own the span, see
// span.h); readers take no lock. Every entry is a single aligned word, written
// with a relaxed atomic store, so a reader sees either the old or the new
// value. An entry is set before any pointer into its page is handed out, and
// handing out goes through a lock or the user's own synchronisation, which
// orders the store before the reader's load. Leaves are never freed, so a
// reader never follows a dangling leaf pointer.
//
// The class map's root holds each leaf as an offset from a static all-zero
// leaf, so an absent leaf reads as "class 0" without a null check.
//
// Flat view (free()'s fast path): the class leaves of the first root slots,
// covering addresses [0, g_flat_pages << kPageShift), are one contiguous
// mapping at the fixed address kFlatMapAddress, so that the entry of a page
// below g_flat_pages is one load, kFlatMapAddress[page], whose address the
// instruction itself holds (no root, no base register). The page heap places
// its memory in that range (PageMapHeapMap: address hints from
// kFlatHeapStart up, where a program maps nothing of its own in practice),
// and falls back to anywhere else when the range is used up or taken; such
// memory is found through the root as before. Address space, not memory, is
// the cost: the map spans 1/1024 of its range (64 MiB for 64 GiB) at
// [768 MiB, 832 MiB), below the MAP_32BIT range [1 GiB, 2 GiB), leaving a
// non-PIE program's brk heap about 760 MiB; only the entries of pages in use
// are touched. Under an address-space limit (RLIMIT_AS) it is sized to 1/64
// of the limit. Where it cannot be mapped (the address is taken, by a second
// copy of spanalloc, or an emulator that reserves low memory) there is no
// flat view: every lookup takes the root, 11 instructions more per free
// (37 instead of 26 when measured; free() in the flat view is 24 since). g_flat_pages is set once, under the page-heap lock, by the first
// PageMapEnsure, after the map and before any address in the range is
// handed out; a reader that still sees 0 takes the root, which leads to the
// same leaves.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "common.h"
#include "span.h"

namespace spanalloc {

inline constexpr int kRootBits = 17;
inline constexpr int kLeafBits = 18;
inline constexpr size_t kLeafPages = size_t{1} << kLeafBits;

struct ClassLeaf { uint64_t entry[kLeafPages]; };
struct SpanLeaf { Span *span[kLeafPages]; };

// The class map's all-zero leaf and its root (leaf - &zero_leaf per slot) in
// one object, the leaf first: the fast path addresses both, and every leaf,
// from the one base &g_class_map.
struct ClassMap {
  ClassLeaf zero_leaf;  // never written: reads as class 0
  uint64_t root[size_t{1} << kRootBits];
};
extern ClassMap g_class_map __attribute__((visibility("hidden")));
static_assert(offsetof(ClassMap, zero_leaf) == 0);
extern std::atomic<SpanLeaf *> g_span_root[size_t{1} << kRootBits];
extern uint64_t g_flat_pages __attribute__((visibility("hidden")));
inline constexpr uintptr_t kFlatMapAddress = 0x30000000;  // 768 MiB: below 2 GiB, so an instruction's displacement
inline constexpr uintptr_t kFlatHeapStart = uintptr_t{4} << 30;  // 4 GiB: clear of non-PIE programs and their brk
inline constexpr uintptr_t kFlatMaxEnd = uintptr_t{64} << 30;

// A class-map entry: the class in bits 5..11 and the span's start address
// (page-aligned) shifted left by 3, so in bits 16 and up; bits 0..4 and
// 12..15 are 0. class << 5 is also the byte offset of the class's list in a
// thread cache (thread_cache.h asserts sizeof(FreeList) == 32), so free()
// finds its list with no shift; the low 16 bits are that offset alone (one
// movzwl, no copy and mask); and 8 * p + list offset - entry is
// 8 * (p - span start) (one lea and one sub: free() tests that product,
// allocator.h).
inline constexpr int kEntryClassShift = 5;
inline constexpr int kEntryStartShift = 3;
inline constexpr uint64_t kEntryClassBits = uint64_t{0x7f} << kEntryClassShift;
static_assert(kEntryClassBits < (kPageSize << kEntryStartShift) && (kPageSize << kEntryStartShift) == (1u << 16));
constexpr uint64_t MakeClassEntry(uintptr_t span_start, uint32_t cl) {
  return (uint64_t(span_start) << kEntryStartShift) | (uint64_t(cl) << kEntryClassShift);
}
constexpr uint32_t EntryClass(uint64_t e) { return uint32_t((e & kEntryClassBits) >> kEntryClassShift); }
constexpr uintptr_t EntrySpanStart(uint64_t e) { return (e >> kEntryStartShift) & ~uint64_t(kPageSize - 1); }

// Fast-path read: the class-map entry of the page holding p, 0 if p is not in
// a small span. Pointers at or above 2^48 alias lower pages (the root index is
// masked); the callers' validation rejects them.
// A relaxed atomic load of a page-map word (on x86-64 a plain mov). Written as
// asm because GCC does not fold an atomic load's address into one addressing
// mode: this form saves free() two instructions.
SPANALLOC_INLINE uint64_t MapWordLoad(const uint64_t *w) {
  uint64_t v;
  asm("movq %1, %0" : "=r"(v) : "m"(*w));
  return v;
}

// True when page is in the flat view (then FlatEntry reads its entry). The
// two reads are volatile asm so that the compiler keeps them in this order
// (the map is never read before the limit says it exists), the limit read by
// the compare itself and the map's address held by the load.
SPANALLOC_INLINE bool InFlatMap(uintptr_t page) {
  bool below;
  asm volatile("cmpq %2, %1" : "=@ccb"(below) : "r"(page), "m"(g_flat_pages));
  return below;
}
SPANALLOC_INLINE uint64_t FlatEntry(uintptr_t page) {
  uint64_t v;
  asm volatile("movq %c1(,%2,8), %0" : "=r"(v) : "i"(kFlatMapAddress), "r"(page));
  return v;
}

// The entry through the root (pages outside the flat view).
SPANALLOC_INLINE uint64_t RootClassEntry(const void *p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uintptr_t root = (a >> (kPageShift + kLeafBits)) & ((uintptr_t{1} << kRootBits) - 1);
  uintptr_t entry = (a >> (kPageShift - 3)) & ((kLeafPages - 1) << 3);  // byte offset in the leaf
  // &zero_leaf (== &g_class_map) + the root's leaf offset + the entry's.
  const char *leaf = reinterpret_cast<const char *>(&g_class_map) + MapWordLoad(&g_class_map.root[root]);
  return MapWordLoad(reinterpret_cast<const uint64_t *>(leaf + entry));
}

SPANALLOC_INLINE uint64_t ClassEntry(const void *p) {
  uintptr_t page = reinterpret_cast<uintptr_t>(p) >> kPageShift;
  if (SPANALLOC_LIKELY(InFlatMap(page))) return FlatEntry(page);
  return RootClassEntry(p);
}

// Slow-path read: the span that covers page, or nullptr.
inline Span *SpanOfPage(PageId page) {
  if (page >> (kRootBits + kLeafBits)) return nullptr;
  SpanLeaf *leaf = g_span_root[page >> kLeafBits].load(std::memory_order_acquire);
  return leaf ? leaf->span[page & (kLeafPages - 1)] : nullptr;
}
inline Span *SpanOf(const void *p) { return SpanOfPage(PageOf(p)); }

// Heap memory for the page heap (as OsMap): in the flat view's range while it
// has room, elsewhere otherwise. nullptr when the kernel refuses memory.
void *PageMapHeapMap(size_t bytes, size_t align);

// Writers (page-heap lock held). Ensure returns false if a leaf could not be
// mapped; the others require Ensure to have succeeded for the range.
bool PageMapEnsure(PageId first, Length n);
void PageMapSetSpan(PageId page, Span *s);
void PageMapSetClass(PageId page, uint64_t entry);
// Sets pages [first, first+n) to span s and, for small spans, class entry
// `entry` (0 to leave the class map alone); one leaf lookup per leaf.
void PageMapSetRange(PageId first, Length n, Span *s, uint64_t entry, bool set_class);
// The page heap, releasing free span [first, first+n) that it owns (state
// kReleasing, no lock needed): gives back the OS pages of both maps that hold
// only the span's interior entries. They read as zero afterwards (class 0,
// no span), which is all an interior page of a free span needs (only its
// first and last pages must map to it).
void PageMapReleaseInterior(PageId first, Length n);

}  // namespace spanalloc
