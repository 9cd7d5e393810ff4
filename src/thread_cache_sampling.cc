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

void ThreadCache::EnterSamplingMode() {
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    stash_[cl].max_length = lists[cl].max_length;
    lists[cl].max_length = 0;  // every free reaches FreeSlow
  }
  countdown_.Start(NextCountdownSeed() ^ reinterpret_cast<uintptr_t>(this));
}

// Moves n stashed objects to the fast list; the caller has charged them.
void ThreadCache::ChargeToList(uint32_t cl, uint32_t n) {
  Stash &st = stash_[cl];
  FreeList &l = lists[cl];
  for (uint32_t i = 0; i < n; i++) {
    void *p = st.head;
    st.head = CheckedLinkOf(p, cl, "malloc");
    st.length--;
    SetLink(p, l.head);
    l.head = p;
    l.length++;
  }
}

// Moves the whole fast list back to the stash and refunds its charge.
void ThreadCache::UnchargeList(uint32_t cl) {
  Stash &st = stash_[cl];
  FreeList &l = lists[cl];
  uint32_t n = l.length;
  for (uint32_t i = 0; i < n; i++) {
    void *p = l.head;
    l.head = CheckedLinkOf(p, cl, "free");
    l.length--;
    SetLink(p, st.head);
    st.head = p;
    st.length++;
  }
  countdown_.Refund(kClassShape[cl].size, n);
}

void ThreadCache::ReleaseStash(uint32_t cl, uint32_t n) {
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
bool ThreadCache::RefillStash(uint32_t cl) {
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
  PublishBytes();
  return true;
}

// The fast list is empty: charge this allocation (it may be a sample), take
// an object, and charge as many more onto the fast list as the countdown
// allows before its next sample.
void *ThreadCache::AllocSampling(uint32_t cl) {
  size_t size = kClassShape[cl].size;
  bool busy = tls_sampler_busy;
  if (!busy) {
    HeapProfilePoll();
    if (unsigned kinds = countdown_.Charge(size)) {
      if (void *p = AllocSampledSmall(cl, kinds)) return p;
    }
  }
  Stash &st = stash_[cl];
  if (st.head == nullptr && !RefillStash(cl)) return nullptr;
  void *p = st.head;
  st.head = CheckedLinkOf(p, cl, "malloc");
  st.length--;
  if (!busy) ChargeToList(cl, countdown_.Precharge(size, st.length));
  *static_cast<LinkWord *>(p) = 0;  // handed out: never reads as a link (free_list.h)
  return p;
}

// Every free of this thread comes here (lists[cl].max_length is 0): the
// common case is kept short, the rest is FreeSamplingSlow's. (A double
// free was caught before: the fast path saw the block's link.)
void ThreadCache::FreeSampling(void *p, uint32_t cl) {
  Stash &st = stash_[cl];
  FreeList &l = lists[cl];
  if (SPANALLOC_UNLIKELY(l.length + st.length >= st.max_length || tls_sampler_busy ||
                         g_profile_requests.load(std::memory_order_relaxed) != 0))
    return FreeSamplingSlow(p, cl);
  if (SPANALLOC_LIKELY(countdown_.PrechargeOne(kClassShape[cl].size))) {
    SetLink(p, l.head);
    l.head = p;
    l.length++;
  } else {
    SetLink(p, st.head);
    st.head = p;
    st.length++;
  }
}

void ThreadCache::FreeSamplingSlow(void *p, uint32_t cl) {
  Stash &st = stash_[cl];
  FreeList &l = lists[cl];
  bool busy = tls_sampler_busy;
  if (!busy) HeapProfilePoll();
  if (l.length + st.length >= st.max_length) OverflowSampling(cl);
  if (!busy && countdown_.PrechargeOne(kClassShape[cl].size)) {
    SetLink(p, l.head);
    l.head = p;
    l.length++;
  } else {
    SetLink(p, st.head);
    st.head = p;
    st.length++;
  }
}

// Full: grow while below one batch (as Overflow does), else give a batch
// back, uncharged objects first.
void ThreadCache::OverflowSampling(uint32_t cl) {
  Stash &st = stash_[cl];
  FreeList &l = lists[cl];
  uint32_t batch = kClassShape[cl].batch;
  if (st.max_length < batch) {
    GrowLimit(cl, st.max_length);
    if (l.length + st.length < st.max_length) return;
  }
  if (st.length < batch) UnchargeList(cl);
  ReleaseStash(cl, batch);
  PublishBytes();
}

void ThreadCache::FlushSampling() {
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    if (lists[cl].length > 0) UnchargeList(cl);
    while (stash_[cl].length > 0) ReleaseStash(cl, kClassShape[cl].batch);
  }
}

// As SalvageAfterFork for the fast lists: a stash whose thread fork stopped
// halfway through a push or a pop is cut at the first link that does not
// hold or at `length` objects; at most the object in flight is lost.
void ThreadCache::SalvageStashAfterFork() {
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    Stash &st = stash_[cl];
    uint32_t n = 0;
    if (st.head != nullptr && st.length > 0 && LinkIsValid(st.head, cl)) {
      void *last = st.head;
      for (n = 1; n < st.length; n++) {
        void *next = LinkOf(last);
        if (next == nullptr || !LinkIsValid(next, cl)) break;
        last = next;
      }
      SetLink(last, nullptr);
    }
    if (n == 0) st.head = nullptr;
    st.length = n;
  }
}

}  // namespace spanalloc
