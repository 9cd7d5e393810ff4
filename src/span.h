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

#include <cstdint>

#include "common.h"
#include "size_classes.h"

namespace spanalloc {

enum class SpanState : uint8_t { kFree, kSmall, kLarge, kReleasing, kSampled };

struct SampleRecord;  // sampler.h

struct Span {
  PageId start = 0;
  Length npages = 0;

  // Links: page-heap length list or central partial list (doubly linked).
  Span *next = nullptr;
  Span *prev = nullptr;
  // Free, committed spans in the order they became free (page heap's
  // release queue; oldest first).
  Span *lru_next = nullptr;
  Span *lru_prev = nullptr;
  // Treap links, for free spans too long for the length lists.
  Span *left = nullptr;
  Span *right = nullptr;
  uint32_t priority = 0;

  SpanState state = SpanState::kFree;
  uint8_t size_class = 0;
  bool released = false;  // every page released to the OS (reads as zero)
  bool in_list = false;   // on a central partial list
  bool in_lru = false;    // on one of the page heap's release queues
  bool parked = false;    // that queue is the parked one (page_heap.h)
  // Small spans: how many objects are free in the span itself.
  uint32_t free_count = 0;
  // Free spans: when the span last became free (coarse ticks, page_heap.cc).
  uint64_t free_since = 0;
  // kLarge and kSampled spans: the sample taken of their object, or nullptr.
  SampleRecord *sample = nullptr;
  // Small spans: bit i set = object i is in the span (free), clear = handed out.
  uint64_t free_bits[kMaxObjectsPerSpan / 64] = {};

  uintptr_t start_addr() const { return start << kPageShift; }
  uintptr_t end_addr() const { return (start + npages) << kPageShift; }
  size_t bytes() const { return npages << kPageShift; }
  PageId last_page() const { return start + npages - 1; }
  bool contains(const void *p) const {
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    return a >= start_addr() && a < end_addr();
  }
};

}  // namespace spanalloc
