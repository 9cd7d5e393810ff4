// Central list (Go's mcentral): one per size class, shared by all threads.
//
// Two stores of free objects, both behind lock_ (lock.h, rank kCentral):
//   transfer slots -- whole batches (exactly kClassShape[cl].batch objects,
//                     linked through their first word) as thread caches
//                     flushed them; a flush or a refill of a full batch is
//                     O(1) under the lock, so objects freed by one thread and
//                     allocated by another (producer/consumer) cost one lock
//                     round trip per batch, never per object.
//   spans          -- partially free spans of this class (doubly linked),
//                     objects tracked by each span's free bitmap; partial
//                     batches and overflow from the slots go back here, and a
//                     span whose objects are all free returns to the page heap.
//                     A refill may take the first objects of a span whose
//                     objects are all free as a run (ObjectRun), never
//                     written by the list: lazy carving, so that objects a
//                     thread never uses stay untouched (thread_cache.h,
//                     FreshRun).
// Lock order: a central lock may be held while taking the page-heap lock,
// never the reverse.
//
// What the list uses from below is one parameter, Env (CentralListEnv below
// in production; a fake page heap in tests/central_list_test.cc and
// tests/fuzz/central_list_fuzz.cc): spans of n pages for a class and their
// return, the span holding an address, the full check of a free-list link,
// and the class shape, and the class of a production list (its place in
// g_central_lists). The list's class is a constructor argument (the tests'
// lists) or found on first use (g_central_lists, all zero so that it sits in
// .bss: a list costs RSS only once used). The member
// functions are defined in central_list_impl.h, which central_list.cc
// instantiates for CentralListEnv (and the tests for their fakes).

#pragma once

#include <cstdint>

#include "common.h"
#include "lock.h"
#include "size_classes.h"
#include "span.h"

namespace spanalloc {

// Objects of one class that lie one after another in one span, `count` of
// them from `start`, `size` apart, none of them written by the list: how
// RemoveRange hands out objects that may never have been touched (lazy
// carving: the thread cache links them only when it needs them, so pages it
// never uses stay untouched, thread_cache.cc).
struct ObjectRun {
  void *start = nullptr;
  uint32_t count = 0;
};

struct CentralStats {
  uint64_t slot_objects;  // objects in transfer slots
  uint64_t span_free;     // free objects inside this class's spans
  uint64_t spans;         // spans of this class
};

// The production Env: the page heap (page_heap.h), the page map and the
// link check of free_list.h. Defined in central_list.cc, where the calls
// inline into the list.
struct CentralListEnv {
  Span *AllocSpan(Length pages, uint32_t cl);             // state kSmall, class map set
  void FreeSpan(Span *s);                                 // all its objects free
  void FreeSpans(Span *const *spans, int n);              // the same for n spans, in one call
  Span *SpanOf(const void *p) const;                      // nullptr if none
  bool LinkIsValid(const void *link, uint32_t cl) const;  // free_list.h
  const ClassShape &Shape(uint32_t cl) const { return kClassShape[cl]; }
  uint32_t ListClass(const void *list) const;             // its index in g_central_lists
};

template <class Env>
class alignas(64) CentralListT {
 public:
  // At most ~256 KiB of batches per class (InitLocked), and at most this many:
  // 16 rather than 64 caps only the classes under 128 B (16 batches of 128
  // objects), with the same instruction count on bench prodcons.
  static constexpr int kMaxSlots = 16;
  // A run is handed out only when its objects reach past the OS page
  // (kOsPage) its first one starts on: linking them would write to more
  // pages than the first one's, which is written when it is handed out
  // anyway. (A run costs its taker a slow path per OS page, thread_cache.cc.)
  // Nor for fewer objects than this (short refills: a thread's first ones of a
  // class), which cost more instructions as a run than they save in memory.
  // (Runs from the free tails of partly used spans as well cut churn's peak
  // no further and raised app's by 0.37 MiB: the thread cache held a
  // different set of spans, and the page heap's free spans fit app's large
  // requests less often.)
  static constexpr int kMinRun = 16;
  // Spans whose objects are all back go to the page heap this many at a
  // time (one page-heap lock and release check for them all): a batch of
  // frees of long-lived objects empties many spans (bench frag's final
  // frees: ~40 per batch of the 256 B class).
  static constexpr int kFreeBatch = 32;

  constexpr explicit CentralListT(uint32_t cl, const Env &env = Env()) : cl_(cl), env_(env) {}
  // All zero; the class comes from Env::ListClass on first use.
  constexpr CentralListT() = default;
  CentralListT(const CentralListT &) = delete;
  CentralListT &operator=(const CentralListT &) = delete;

  // Takes n objects (n <= batch), or a whole batch from a transfer slot when
  // one is there and n > 1; returns how many, linked from *head to *tail
  // (tail's next is null). 0 only when the OS refuses memory.
  // With `run` (emptied first), some of them may come back as *run instead,
  // unlinked: the first objects of a span whose objects are all free (a span
  // just carved, most often), at least kMinRun and reaching past one OS page.
  // The count returned includes them; *head and *tail are null when all are
  // in the run. Without `run`, every object is linked.
  int RemoveRange(void **head, void **tail, int n, ObjectRun *run = nullptr);
  // Gives back a run taken from RemoveRange (all of it or its untaken end),
  // its objects never written: their bits are set again in their span, as
  // one range, without touching them.
  void InsertRun(ObjectRun run);
  // Gives back n objects linked from head to tail (tail's link is null).
  // Links are checked in full where objects go back to their spans; a whole
  // batch parked in a transfer slot is checked link by link when thread
  // caches pop it (free_list.h).
  void InsertRange(void *head, void *tail, int n);
  // The same, finding the tail by walking (checked) links.
  void InsertRange(void *head, int n);
  // Parks one whole batch (head to tail, tail's link null) in a free
  // transfer slot, O(1); false, and nothing taken, when every slot is full.
  bool TryInsertBatch(void *head, void *tail);

  // Returns every object in the transfer slots to its span; spans whose
  // objects are then all free go back to the page heap (malloc_trim, and the
  // background release thread once the program has been idle). Never
  // called by the scavenger while it holds another lock.
  void ReleaseSlots();

  CentralStats Stats();
  const char *Validate();
  Mutex &lock() { return lock_; }
  uint32_t size_class() const { return cl_; }

 private:
  struct Batch {
    void *head;
    void *tail;
  };
  void InitLocked();
  int FromSpansLocked(void **head, void **tail, int n, ObjectRun *run);
  void ToSpansLocked(void *head, int n);
  bool RunToSpanLocked(Span *s, uint32_t run);
  [[noreturn]] SPANALLOC_COLD void BadObjectLocked(const void *prev);
  bool GrowLocked();
  void LinkSpanLocked(Span *s);
  void UnlinkSpanLocked(Span *s);

  Mutex lock_{LockRank::kCentral};
  // Set at construction, or by the first InitLocked (lock_ held) when 0;
  // constant from then on, before any object of the list exists, so read
  // without the lock wherever the caller holds such an object.
  uint32_t cl_ = 0;
  // Protected by lock_:
  uint32_t batch_ = 0;  // 0 until first use
  int max_slots_ = 0;
  int nslots_ = 0;
  Span *partial_ = nullptr;  // spans with free_count > 0
  uint64_t spans_ = 0;
  uint64_t span_free_ = 0;
  Batch slots_[kMaxSlots] = {};
  // Calls to the layer below; stateless in production.
  [[no_unique_address]] Env env_;
};

using CentralList = CentralListT<CentralListEnv>;
extern template class CentralListT<CentralListEnv>;  // central_list.cc

// One list per class, all zero (in .bss): list[cl] finds its class cl on
// first use. (In .data, each holding its class, they cost every process
// their 23 KiB of file pages, resident once read: mapped with their
// neighbours.)
struct CentralLists {
  CentralList list[kNumClasses];
};
extern CentralLists g_central_lists;
// g_central[cl]: the central list of class cl.
inline constexpr CentralList (&g_central)[kNumClasses] = g_central_lists.list;

}  // namespace spanalloc
