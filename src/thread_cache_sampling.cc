// The thread cache in sampling mode (thread_cache.h, Stash; sampler.h says
// how the countdown and the fast lists work together). Only slow paths:
// ThreadCache::AllocSlow and FreeSlow come here when g_sampler.on. Stash
// links are free-list links like the fast lists' (free_list.h), so free()
// finds a double free of a stashed object as it finds any other.
#include <algorithm>

#include "allocator.h"
#include "central_list.h"
#include "free_list.h"
#include "heap_profile.h"
#include "sampler.h"
#include "thread_cache.h"

namespace spanalloc {

SPANALLOC_RARE void ThreadCache::EnterSamplingMode() {
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    stash_[cl].max_length = lists[cl].max_length;
    lists[cl].set_max_length(0);  // every free reaches FreeSlow
  }
  countdown_.Start(NextCountdownSeed() ^ reinterpret_cast<uintptr_t>(this));
}

// Charges as many stashed objects as the countdown allows before its next
// sample and moves them to the fast list. When the window ends at a sample
// (not at the stash's end), the charge after it holds the sample: it is the
// class's, pending until the list runs dry and AllocSlow comes back.
SPANALLOC_RARE void ThreadCache::ChargeWindow(uint32_t cl) {
  Stash &st = stash_[cl];
  FreeList &l = lists[cl];
  uint32_t n = countdown_.Precharge(kClassShape[cl].size, st.length);
  bool cut = n < st.length;
  for (uint32_t i = 0; i < n; i++) {
    void *p = st.head;
    st.head = CheckedLinkOf(p, cl, "malloc");
    st.length--;
    SetLink(p, l.head);
    l.head = p;
    l.room--;
  }
  if (cut) ChargePending(cl);
}

// One charge of class cl that holds a sample (the countdown has no room for
// it): the sample is the class's next allocation from AllocSlow.
SPANALLOC_RARE void ThreadCache::ChargePending(uint32_t cl) {
  Stash &st = stash_[cl];
  unsigned kinds = countdown_.Charge(kClassShape[cl].size);
  if ((kinds & kSampleProfile) && st.pending_profile < UINT16_MAX) st.pending_profile++;
  if ((kinds & kSampleGuard) && st.pending_guard < UINT16_MAX) st.pending_guard++;
}

// Moves the whole fast list back to the stash; its objects keep their
// charge (sampler.h says why).
SPANALLOC_RARE void ThreadCache::UnchargeList(uint32_t cl) {
  Stash &st = stash_[cl];
  FreeList &l = lists[cl];
  uint32_t n = l.length();
  for (uint32_t i = 0; i < n; i++) {
    void *p = l.head;
    l.head = CheckedListLinkOf(p, cl, "free");
    l.room++;
    SetLink(p, st.head);
    st.head = p;
    st.length++;
  }
}

SPANALLOC_RARE void ThreadCache::ReleaseStash(uint32_t cl, uint32_t n) {
  Stash &st = stash_[cl];
  if (n > st.length) n = st.length;
  if (n == 0) return;
  void *head = st.head;
  void *last = head;
  for (uint32_t i = 1; i < n; i++) last = CheckedLinkOf(last, cl, "free");
  st.head = CheckedLinkOf(last, cl, "free");
  st.length -= n;
  SetLink(last, nullptr);
  g_central[cl].InsertRange(head, int(n));
}

// The stash is empty (and so is the fast list): a batch from the central
// list, with the same slow start as Refill.
SPANALLOC_RARE bool ThreadCache::RefillStash(uint32_t cl) {
  Stash &st = stash_[cl];
  const ClassShape &shape = kClassShape[cl];
  void *head, *tail;
  int got = g_central[cl].RemoveRange(&head, &tail, int(std::min(st.max_length, shape.batch)));
  if (got == 0) return false;
  GrowLimit(cl, st.max_length);
  if (uint32_t(got) > st.max_length) {
    max_bytes_ += uint64_t(uint32_t(got) - st.max_length) * shape.size;
    st.max_length = uint32_t(got);
  }
  SetLink(tail, st.head);
  st.head = head;
  st.length += uint32_t(got);
  PublishClass(cl);
  return true;
}

// The fast list is empty: take a pending sample of the class, or charge this
// allocation (it may be a sample); otherwise take an object, and charge a
// window of more onto the fast list.
void *ThreadCache::AllocSampling(uint32_t cl) {
  Stash &st = stash_[cl];
  bool busy = tls_sampler_busy;
  if (!busy) {
    HeapProfilePoll();
    unsigned kinds;
    if (st.pending_profile != 0 || st.pending_guard != 0) {
      kinds = (st.pending_profile != 0 ? kSampleProfile : 0) | (st.pending_guard != 0 ? kSampleGuard : 0);
      st.pending_profile -= st.pending_profile != 0;
      st.pending_guard -= st.pending_guard != 0;
    } else {
      kinds = countdown_.Charge(kClassShape[cl].size);
    }
    if (kinds != 0) {
      if (void *p = AllocSampledSmall(cl, kinds)) return p;
    }
  }
  if (st.head == nullptr && !RefillStash(cl)) return nullptr;
  void *p = st.head;
  st.head = CheckedLinkOf(p, cl, "malloc");
  st.length--;
  // No window while samples are pending: the next allocation takes one.
  if (!busy && st.pending_profile == 0 && st.pending_guard == 0) ChargeWindow(cl);
  *static_cast<LinkWord *>(p) = 0;  // handed out: never reads as a link (free_list.h)
  return p;
}

// Every free of this thread comes here (lists[cl].max_length is 0): the
// common case is kept short, the rest is FreeSamplingSlow's. (A double
// free was caught before: the fast path saw the block's link.)
SPANALLOC_RARE void ThreadCache::FreeSampling(void *p, uint32_t cl) {
  Stash &st = stash_[cl];
  FreeList &l = lists[cl];
  if (SPANALLOC_UNLIKELY(l.length() + st.length >= st.max_length || tls_sampler_busy ||
                         g_profile_requests.load(std::memory_order_relaxed) != 0 ||
                         !countdown_.PrechargeOne(kClassShape[cl].size)))
    return FreeSamplingSlow(p, cl);
  SetLink(p, l.head);
  l.head = p;
  l.room--;
}

// A full cache, a profile to write, sampler code on this thread, or a
// charge that holds a sample (then the sample is the class's, and the object
// waits uncharged in the stash).
SPANALLOC_RARE void ThreadCache::FreeSamplingSlow(void *p, uint32_t cl) {
  Stash &st = stash_[cl];
  FreeList &l = lists[cl];
  bool busy = tls_sampler_busy;
  if (!busy) HeapProfilePoll();
  if (l.length() + st.length >= st.max_length) OverflowSampling(cl);
  bool charged = !busy && countdown_.PrechargeOne(kClassShape[cl].size);
  if (!busy && !charged) ChargePending(cl);
  if (charged) {
    SetLink(p, l.head);
    l.head = p;
    l.room--;
  } else {
    SetLink(p, st.head);
    st.head = p;
    st.length++;
  }
}

// Full: grow while below one batch (as Overflow does), else give a batch
// back, uncharged objects first.
SPANALLOC_RARE void ThreadCache::OverflowSampling(uint32_t cl) {
  Stash &st = stash_[cl];
  FreeList &l = lists[cl];
  uint32_t batch = kClassShape[cl].batch;
  if (st.max_length < batch) {
    GrowLimit(cl, st.max_length);
    if (l.length() + st.length < st.max_length) return;
  }
  if (st.length < batch) UnchargeList(cl);
  ReleaseStash(cl, batch);
  PublishClass(cl);
}

SPANALLOC_RARE void ThreadCache::FlushSampling() {
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    if (lists[cl].length() > 0) UnchargeList(cl);
    while (stash_[cl].length > 0) ReleaseStash(cl, kClassShape[cl].batch);
  }
}

// As SalvageAfterFork for the fast lists: a stash whose thread fork stopped
// halfway through a push or a pop is cut at the first link that does not
// hold or at `length` objects; at most the object in flight is lost.
SPANALLOC_RARE void ThreadCache::SalvageStashAfterFork() {
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    Stash &st = stash_[cl];
    st.length = CutAtFirstBadLink(&st.head, st.length, cl);
  }
}

}  // namespace spanalloc
