// Page heap (Go's mheap): all pages of the heap, as spans.
//
// Free spans of up to kMaxListPages pages sit in one doubly linked list per
// length (a bitmap says which lists are non-empty); longer ones sit in a treap
// ordered by (length, start address), so a best fit is O(log n). Committed
// and released free spans are kept apart: a request takes the best fit among
// the committed ones, and a released span only when none of them fits, so
// reuse faults no pages in when it need not. Allocation
// takes the smallest fitting run and splits off the rest; freeing coalesces
// with free neighbours found through the page map (a span made of committed
// and released parts counts as committed). Growth maps at least kGrowBytes
// from the OS at a time.
//
// Returning memory: committed free spans also sit in a queue in the order
// they became free. A span free for longer than the release delay goes back
// with madvise(MADV_DONTNEED) while the heap holds more than the retained
// bytes (SPANALLOC_RETAIN, or mallopt's M_TRIM_THRESHOLD + M_TOP_PAD); the
// oldest go back at once whenever free committed bytes exceed the cap (the
// larger of SPANALLOC_FREE_CAP_MB and what lets in-use plus free committed
// bytes reach twice the peak of the memory in use), and
// everything goes back near the memory limit (SPANALLOC_MEMORY_LIMIT or the
// cgroup's) and before the heap grows there. The policy runs on heap
// operations (MaybeRelease) and, for an idle program, on the background
// release thread (scavenger.h, which calls ReleaseDue). The madvise runs with
// the lock dropped: the span is taken out of the free structures first
// (state kReleasing, on the in-flight list), so no one can allocate it
// meanwhile, and a fork child finds it on that list.
//
// Free spans coalesce only with neighbours in the same state (committed with
// committed, released with released), so a released span stays counted as
// released and is never released twice.
//
// Huge pages (SPANALLOC_HUGEPAGES=1): the heap grows in 2 MiB-aligned chunks,
// advised MADV_HUGEPAGE once it has mapped kHugePagesFrom (a small program's
// RSS is not rounded up to huge pages). A due span then gives back only the whole 2 MiB
// ranges inside it; its ends, which share a huge page with memory in use,
// are parked (committed, on the parked queue) and go back only under
// pressure: when free committed bytes pass retained + kParkedSlack, at the
// cap, near the limit, or on malloc_trim.
//
// Lock: lock_ protects every field below and every free span (lock.h, rank kPageHeap).
// Syscalls (mmap, madvise) are never made while holding it, except the rare
// mapping of a page-map leaf.
//
// What the page heap uses from outside is one parameter, Env (PageHeapEnv
// below in production; fakes in tests/page_heap_test.cc and
// tests/fuzz/page_heap_fuzz.cc): the page map's writes and reads, the OS
// calls of os_memory.h, the clock, the options it reads (release delay, cap,
// retained bytes, memory limit, huge pages), the background thread's hooks,
// and the allocator of Span objects. The page heap never touches the memory
// of a span: only addresses pass between it and Env.
// The member functions are defined in page_heap_impl.h, which page_heap.cc
// instantiates for PageHeapEnv (and the tests for their fakes).

#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "common.h"
#include "lock.h"
#include "metadata_alloc.h"
#include "span.h"

namespace spanalloc {

struct Options;  // options.h

struct PageHeapStats {
  uint64_t free_bytes;        // free and committed
  uint64_t released_bytes;    // free and released to the OS
  uint64_t large_bytes;       // in large spans handed out
  uint64_t small_span_bytes;  // in spans carved into small objects
  uint64_t spans;             // span objects in use (metadata)
};

// The production Env: the one page map (page_map.h), os_memory.h, the coarse
// clock, g_options and the background thread (scavenger.h). Defined in
// page_heap.cc, where the calls inline into the page heap.
struct PageHeapEnv {
  using SpanAlloc = FixedAlloc<Span>;
  // Page map.
  Span *SpanOfPage(PageId page) const;
  bool PageMapEnsure(PageId first, Length n);
  void PageMapSetSpan(PageId page, Span *s);
  void PageMapSetRange(PageId first, Length n, Span *s, uint64_t entry, bool set_class);
  void PageMapReleaseInterior(PageId first, Length n);
  // OS memory.
  void *OsMap(size_t bytes, size_t align);
  bool OsAdviseHugePages(void *p, size_t bytes);
  bool OsRelease(void *p, size_t bytes);
  void OsUnmap(void *p, size_t bytes);
  bool OsRemapInPlace(void *p, size_t old_bytes, size_t new_bytes);
  void *OsReserve(size_t bytes, size_t align);
  bool OsRemapMoveTo(void *p, size_t old_bytes, size_t new_bytes, void *target);
  void OsUnreserve(void *target, size_t bytes);
  bool OsMapFixed(void *p, size_t bytes);
  // Clock, options, background thread.
  uint64_t NowMillis() const;
  const Options &options() const;
  uint64_t RetainBytes() const;
  bool OnScavengerThread() const;
  void NotifyScavenger(uint64_t excess);
};

template <class Env>
class PageHeapT {
 public:
  static constexpr Length kMaxListPages = 128;
  static constexpr size_t kGrowBytes = size_t{32} << 20;
  // Huge-page mode: growth past this much heap is advised MADV_HUGEPAGE.
  static constexpr uint64_t kHugePagesFrom = uint64_t{64} << 20;

  constexpr PageHeapT() = default;
  constexpr explicit PageHeapT(const Env &env) : env_(env) {}
  PageHeapT(const PageHeapT &) = delete;
  PageHeapT &operator=(const PageHeapT &) = delete;

  // A span of n pages whose start is a multiple of align_pages, as a large
  // object (state kLarge). *zeroed tells whether its memory is known to be
  // all zero. nullptr when the OS refuses memory.
  Span *AllocLarge(Length n, Length align_pages, bool *zeroed);
  // A span of n pages for size class cl (state kSmall), class map set.
  Span *AllocSmall(Length n, uint32_t cl);
  // Returns a span of either kind to the free structures.
  void Free(Span *s) { Free(&s, 1); }
  // The same for n spans, under one lock, with one release check after them.
  void Free(Span *const *spans, size_t n);

  // realloc support for large spans (state kLarge, owned by the caller).
  // Resizes s to n pages where it stands: shrinking frees the tail; growing
  // takes the start of a free right neighbour. false if that is not free.
  bool ResizeInPlace(Span *s, Length n);
  // A span of n pages carved from a committed free span (state kLarge), so
  // that writing it faults nothing in; nullptr when no committed free span
  // fits (nothing is grown or released then). realloc copies a growing
  // block here before it considers mremap, whose new pages all fault.
  Span *AllocLargeCommitted(Length n);
  // Grows s to n pages by moving its pages (mremap), never copying them.
  // Returns the span now holding the data (s itself if it grew in place),
  // or nullptr if the kernel refused or n <= s->npages (s is then untouched;
  // shrinking is ResizeInPlace's, and the caller copies when that failed).
  Span *Remap(Span *s, Length n);

  // Releases every free committed span now; returns the bytes released.
  size_t ReleaseAll();
  // Applies the release policy (delay and cap); cheap when nothing is due.
  void MaybeRelease();
  // The background thread's step: releases what is due now and returns when
  // the next release falls due (NowMillis() scale), kNever when nothing will
  // without new frees.
  static constexpr uint64_t kNever = ~uint64_t{0};
  uint64_t ReleaseDue(size_t *released);
  // Free committed bytes (an unlocked peek).
  uint64_t FreeCommittedBytes() const { return free_bytes_.load(std::memory_order_relaxed); }
  // Free committed bytes kept before the release delay: above this, the
  // excess goes back at once (the larger of SPANALLOC_FREE_CAP_MB and
  // twice the peak of the memory in use less what is in use now).
  uint64_t FreeCap() const;
  // Free committed bytes the parked queue may hold beyond the retained bytes
  // before its spans go back too (huge-page mode).
  static constexpr uint64_t kParkedSlack = uint64_t{16} << 20;
  // In a fork child: spans that another thread was releasing when fork() ran
  // go back to the free structures (as committed: the release may not have
  // happened).
  void AfterForkChild();

  PageHeapStats Stats();
  // Checks every invariant of the free structures (tests, debug builds).
  // Returns nullptr when all hold, else a description of the first broken one.
  const char *Validate();

  Mutex &lock() { return lock_; }
  typename Env::SpanAlloc &span_alloc() { return span_alloc_; }
  Env &env() { return env_; }

 private:
  Span *AllocLocked(Length n, Length align_pages);
  Span *FindLocked(Length n);
  Span *SplitLocked(Span *s, Length n, Length align_pages);
  bool GrowUnlocked(Length n);
  void FreeLocked(Span *s, Span **retired, int *nretired);
  // Coalesces. The Span objects merged away go to retired[(*nretired)++]
  // when retired is given (for the caller to delete), else straight back.
  void InsertFreeLocked(Span *s, Span **retired = nullptr, int *nretired = nullptr);
  void LinkFreeLocked(Span *s);
  void UnlinkFreeLocked(Span *s);
  void QueueRemoveLocked(Span *s);
  enum class ReleaseMode { kDue, kAll };
  size_t ReleaseLocked(ReleaseMode mode, uint64_t now);
  Span *TakeDueLocked(ReleaseMode mode, uint64_t now);
  Span *TrimToHugePagesLocked(Span *s);
  Span *TrimToExcessLocked(Span *s, uint64_t excess);
  void MakeLargeLocked(Span *s);
  bool NearLimit(uint64_t extra = 0) const;
  bool NeedRoomLocked(Length n);
  void NotifyScavenger();
  void QueueAppendLocked(Span *s, bool parked);
  void NoteInUseLocked();
  void SetSpanPagesLocked(Span *s);

  // Treap of long free spans.
  static bool Less(const Span *a, const Span *b) {
    return a->npages != b->npages ? a->npages < b->npages : a->start < b->start;
  }
  Span *TreapInsert(Span *root, Span *s);
  Span *TreapErase(Span *root, Span *s);
  static Span *TreapMerge(Span *a, Span *b);
  static Span *TreapBestFit(Span *root, Length n);
  uint32_t NextPriority();

  // Free spans of one state (committed or released): length lists and treap.
  struct FreeSet {
    Span *lists[kMaxListPages + 1] = {};                // by length, 1..kMaxListPages
    uint64_t nonempty[(kMaxListPages + 64) / 64] = {};  // bit n: lists[n] non-empty
    Span *treap = nullptr;
  };
  FreeSet &SetOf(const Span *s) { return sets_[s->released ? 1 : 0]; }
  Span *FindInSetLocked(FreeSet &set, Length n);

  Mutex lock_{LockRank::kPageHeap};
  // sets_[0]: committed free spans (reuse faults nothing in);
  // sets_[1]: released free spans.
  FreeSet sets_[2];
  Span *queue_head_ = nullptr;  // committed free spans, oldest first
  Span *queue_tail_ = nullptr;
  Span *parked_head_ = nullptr;  // huge-page mode: committed ends of released spans, oldest first
  Span *parked_tail_ = nullptr;
  Span *in_flight_ = nullptr;            // kReleasing spans (linked by lru_next/lru_prev)
  std::atomic<uint64_t> free_bytes_{0};  // written under lock_, peeked without it
  uint64_t released_bytes_ = 0;
  std::atomic<uint64_t> large_bytes_{0};       // written under lock_, peeked without it
  std::atomic<uint64_t> small_span_bytes_{0};  // written under lock_, peeked without it
  std::atomic<uint64_t> last_release_check_{0};
  std::atomic<uint64_t> peak_in_use_{0};  // high-water mark of large + small span bytes
  std::atomic<uint64_t> heap_mapped_{0};  // bytes the heap has mapped (growth only)
  uint32_t rng_ = 2463534242u;
  typename Env::SpanAlloc span_alloc_;  // its lock: rank kMetadata, taken under lock_
  // Span objects SplitLocked may need, taken before a free span is cut, so
  // that running out of metadata memory is an ENOMEM, never a half-cut span.
  // Protected by lock_.
  Span *spares_[2] = {};
  // Calls out of the layer (page map, OS, clock, options); stateless in
  // production. Its own state, if any, is its own business.
  [[no_unique_address]] Env env_;
};

using PageHeap = PageHeapT<PageHeapEnv>;
extern template class PageHeapT<PageHeapEnv>;  // page_heap.cc
extern PageHeap g_page_heap;

// Coarse monotonic clock in milliseconds (vDSO, no syscall).
uint64_t NowMillis();

}  // namespace spanalloc
