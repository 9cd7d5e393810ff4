// Span (Go's mspan): a run of whole pages, the unit the page heap hands out.
//
// A span is in exactly one state:
//   kFree  -- in the page heap's free structures (a length list or the
//             treap); its first and last pages map to it in the page map.
//   kSmall -- carved into objects of one size class, owned by that class's
//             central list; every page maps to it, and the fast-path entry of
//             every page holds (span start | class).
//   kLarge -- one large object (or an aligned block); every page maps to it.
//   kReleasing -- free, taken out of the free structures while its pages are
//             madvised without the page-heap lock (page_heap.cc).
//   kSampled -- one sampled small object (sampler.h) in a span of its own,
//             allocated from the page heap as a large span; its pages have
//             class-map entry 0, so its free reaches the slow path.
// A span handed out as kLarge or kSampled carries `sample` (sampler.h) when
// its object was sampled; the sampler clears it before the span goes back.
//
// Ownership: a free span is protected by the page heap lock; a small span by
// its class's central-list lock; a large span belongs to the user until
// free() hands it back to the page heap.
//
// Invariants for small spans (checked by CentralList::Validate):
//   free_count == popcount(free_bits) <= objects
//   handed out == objects - free_count (in thread caches, transfer slots or
//   held by the user)
#pragma once

#include <cstddef>
#include <cstdint>

#include "common.h"
#include "size_classes.h"

namespace spanalloc {

enum class SpanState : uint8_t { kFree, kSmall, kLarge, kReleasing, kSampled };

struct SampleRecord;  // sampler.h

// Layout: one record per span, 64-byte aligned (FixedAlloc places records of
// a 64-aligned type at multiples of their size from a page-aligned chunk).
// Returning an object to its span (CentralList::ToSpansLocked) reads start,
// state and size_class, sets a bit of free_bits and updates free_count and
// the partial-list links: all in the record's first cache line for the
// first 192 objects, so one line per span for classes of up to 192 objects
// (every class of 48 B and more). The fields only a free span uses (release
// queue, treap, free_since) share the bitmap's bytes: a free span has no
// bitmap in use, and a small span's bitmap is written in full when it is
// carved (CentralList::GrowLocked), so the page heap and the central list
// never read what the other wrote there. The commonly used ones (queue
// links, free_since) are in the first line too, so that freeing and
// coalescing touch one line per span as well; the treap's (spans of more
// than 128 pages only) follow. Everything read whatever the state (start,
// npages, state, the flags, sample: guarded_alloc.cc's signal handler
// reads sample of any span) is outside the union. (bench frag, 1 GiB of
// small objects in ~131 k spans: the final frees' ToSpansLocked took 12-15 ms
// on 2-4 lines per span, 9-10 ms on one; callgrind at 1/20 scale, its L1
// read misses 44 k -> 20 k.)
struct alignas(64) Span {
  PageId start = 0;  // first, where FixedAlloc's free list writes its link
  Length npages = 0;

  // Links: page-heap length list or central partial list (doubly linked).
  Span *next = nullptr;
  Span *prev = nullptr;

  SpanState state = SpanState::kFree;
  uint8_t size_class = 0;
  bool released = false;  // every page released to the OS (reads as zero)
  bool in_list = false;   // on a central partial list
  bool in_lru = false;    // on one of the page heap's release queues
  bool parked = false;    // that queue is the parked one (page_heap.h)
  // Small spans: how many objects are free in the span itself.
  uint16_t free_count = 0;

  union {
    // Small spans: bit i set = object i is in the span (free), clear = handed out.
    uint64_t free_bits[kMaxObjectsPerSpan / 64] = {};
    // Free spans (kFree, kReleasing) only:
    struct {
      // Free, committed spans in the order they became free (page heap's
      // release queue; oldest first); the in-flight list of kReleasing ones.
      Span *lru_next;
      Span *lru_prev;
      // When the span last became free (coarse ticks, page_heap.cc).
      uint64_t free_since;
      // Treap links, for free spans too long for the length lists.
      Span *left;
      Span *right;
      uint32_t priority;
    };
  };

  // kLarge and kSampled spans: the sample taken of their object, or nullptr
  // (read for a span in any state).
  SampleRecord *sample = nullptr;

  uintptr_t start_addr() const { return start << kPageShift; }
  uintptr_t end_addr() const { return (start + npages) << kPageShift; }
  size_t bytes() const { return npages << kPageShift; }
  PageId last_page() const { return start + npages - 1; }
  bool contains(const void *p) const {
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    return a >= start_addr() && a < end_addr();
  }
};

// Bitmap words that share the record's first cache line with the header.
inline constexpr uint32_t kSpanBitsInFirstLine = (64 - offsetof(Span, free_bits)) / 8;
static_assert(kSpanBitsInFirstLine == 3 && offsetof(Span, free_since) < 64);
static_assert(sizeof(Span) == 192, "three lines (224 bytes and 16-byte aligned before the union)");
static_assert(kMaxObjectsPerSpan <= UINT16_MAX, "free_count is 16 bits");

}  // namespace spanalloc
