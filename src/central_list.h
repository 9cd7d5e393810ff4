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
// Lock order: a central lock may be held while taking the page-heap lock,
// never the reverse.
#pragma once

#include <cstdint>

#include "common.h"
#include "lock.h"
#include "size_classes.h"
#include "span.h"

namespace spanalloc {

struct CentralStats {
  uint64_t slot_objects;  // objects in transfer slots
  uint64_t span_free;     // free objects inside this class's spans
  uint64_t spans;         // spans of this class
};

class alignas(64) CentralList {
 public:
  static constexpr int kMaxSlots = 64;

  // Takes n objects (n <= batch), or a whole batch from a transfer slot when
  // one is there and n > 1; returns how many, linked from *head to *tail
  // (tail's next is null). 0 only when the OS refuses memory.
  int RemoveRange(void **head, void **tail, int n);
  // Gives back n objects linked from head to tail (tail's link is null).
  // Links are checked in full where objects go back to their spans; a whole
  // batch parked in a transfer slot is checked link by link when thread
  // caches pop it (free_list.h).
  void InsertRange(void *head, void *tail, int n);
  // The same, finding the tail by walking (checked) links.
  void InsertRange(void *head, int n);

  // Returns every object in the transfer slots to its span; spans whose
  // objects are then all free go back to the page heap (malloc_trim, and the
  // background release thread once the program has been idle). Never
  // called by the scavenger while it holds another lock.
  void ReleaseSlots();

  CentralStats Stats();
  const char *Validate();
  Mutex &lock() { return lock_; }

 private:
  struct Batch {
    void *head;
    void *tail;
  };
  void InitLocked();  // this must be an element of g_central
  int FromSpansLocked(void **head, void **tail, int n);
  void ToSpansLocked(void *head, int n);
  bool GrowLocked();
  void LinkSpanLocked(Span *s);
  void UnlinkSpanLocked(Span *s);

  Mutex lock_{LockRank::kCentral};
  // Protected by lock_:
  uint32_t cl_ = 0;
  uint32_t batch_ = 0;
  int max_slots_ = 0;
  int nslots_ = 0;
  Span *partial_ = nullptr;  // spans with free_count > 0
  uint64_t spans_ = 0;
  uint64_t span_free_ = 0;
  Batch slots_[kMaxSlots] = {};
};

extern CentralList g_central[kNumClasses];

}  // namespace spanalloc
