// The page heap's member functions (page_heap.h says what the page heap is,
// its locks and its invariants). Included by page_heap.cc, which instantiates
// them for the production Env, and by tests that instantiate them for fakes.
#pragma once

#include <sched.h>

#include <algorithm>

#include "options.h"
#include "os_memory.h"
#include "page_heap.h"
#include "page_map.h"

namespace spanalloc {

// ---- treap of long free spans -------------------------------------------

template <class Env>
uint32_t PageHeapT<Env>::NextPriority() {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 17;
  rng_ ^= rng_ << 5;
  return rng_;
}

template <class Env>
Span *PageHeapT<Env>::TreapInsert(Span *root, Span *s) {
  if (root == nullptr) return s;
  if (Less(s, root)) {
    root->left = TreapInsert(root->left, s);
    if (root->left->priority > root->priority) {  // rotate right
      Span *l = root->left;
      root->left = l->right;
      l->right = root;
      return l;
    }
  } else {
    root->right = TreapInsert(root->right, s);
    if (root->right->priority > root->priority) {  // rotate left
      Span *r = root->right;
      root->right = r->left;
      r->left = root;
      return r;
    }
  }
  return root;
}

template <class Env>
Span *PageHeapT<Env>::TreapMerge(Span *a, Span *b) {
  if (a == nullptr) return b;
  if (b == nullptr) return a;
  if (a->priority > b->priority) {
    a->right = TreapMerge(a->right, b);
    return a;
  }
  b->left = TreapMerge(a, b->left);
  return b;
}

template <class Env>
Span *PageHeapT<Env>::TreapErase(Span *root, Span *s) {
  if (root == nullptr) FatalInternal("page heap: span missing from treap");
  if (root == s) return TreapMerge(s->left, s->right);
  if (Less(s, root))
    root->left = TreapErase(root->left, s);
  else
    root->right = TreapErase(root->right, s);
  return root;
}

template <class Env>
Span *PageHeapT<Env>::TreapBestFit(Span *root, Length n) {
  Span *best = nullptr;
  for (Span *cur = root; cur != nullptr;) {
    if (cur->npages >= n) {
      best = cur;
      cur = cur->left;
    } else {
      cur = cur->right;
    }
  }
  return best;
}

// ---- free structures ----------------------------------------------------

template <class Env>
void PageHeapT<Env>::LinkFreeLocked(Span *s) {
  SPANALLOC_DCHECK(lock_.IsHeld());
  s->state = SpanState::kFree;
  FreeSet &set = SetOf(s);
  if (s->npages <= kMaxListPages) {
    s->prev = nullptr;
    s->next = set.lists[s->npages];
    if (s->next) s->next->prev = s;
    set.lists[s->npages] = s;
    set.nonempty[s->npages / 64] |= uint64_t{1} << (s->npages % 64);
  } else {
    s->left = s->right = nullptr;
    s->priority = NextPriority();
    set.treap = TreapInsert(set.treap, s);
  }
  if (s->released) {
    released_bytes_ += s->bytes();
  } else {
    free_bytes_.store(free_bytes_.load(std::memory_order_relaxed) + s->bytes(), std::memory_order_relaxed);
    s->free_since = env_.NowMillis();
    QueueAppendLocked(s, false);
  }
}

// Release queue (or the parked queue), newest at the tail.
template <class Env>
void PageHeapT<Env>::QueueAppendLocked(Span *s, bool parked) {
  Span *&head = parked ? parked_head_ : queue_head_;
  Span *&tail = parked ? parked_tail_ : queue_tail_;
  s->lru_next = nullptr;
  s->lru_prev = tail;
  if (tail)
    tail->lru_next = s;
  else
    head = s;
  tail = s;
  s->in_lru = true;
  s->parked = parked;
}

template <class Env>
void PageHeapT<Env>::QueueRemoveLocked(Span *s) {
  if (!s->in_lru) return;
  Span *&head = s->parked ? parked_head_ : queue_head_;
  Span *&tail = s->parked ? parked_tail_ : queue_tail_;
  if (s->lru_prev)
    s->lru_prev->lru_next = s->lru_next;
  else
    head = s->lru_next;
  if (s->lru_next)
    s->lru_next->lru_prev = s->lru_prev;
  else
    tail = s->lru_prev;
  s->lru_next = s->lru_prev = nullptr;
  s->in_lru = false;
  s->parked = false;
}

template <class Env>
void PageHeapT<Env>::UnlinkFreeLocked(Span *s) {
  SPANALLOC_DCHECK(lock_.IsHeld());
  FreeSet &set = SetOf(s);
  if (s->npages <= kMaxListPages) {
    if (s->prev)
      s->prev->next = s->next;
    else
      set.lists[s->npages] = s->next;
    if (s->next) s->next->prev = s->prev;
    if (set.lists[s->npages] == nullptr) set.nonempty[s->npages / 64] &= ~(uint64_t{1} << (s->npages % 64));
    s->next = s->prev = nullptr;
  } else {
    set.treap = TreapErase(set.treap, s);
    s->left = s->right = nullptr;
  }
  if (s->released)
    released_bytes_ -= s->bytes();
  else
    free_bytes_.store(free_bytes_.load(std::memory_order_relaxed) - s->bytes(), std::memory_order_relaxed);
  QueueRemoveLocked(s);
}

// Maps first and last page to s (all a free span needs).
template <class Env>
void PageHeapT<Env>::SetSpanPagesLocked(Span *s) {
  env_.PageMapSetSpan(s->start, s);
  env_.PageMapSetSpan(s->last_page(), s);
}

template <class Env>
void PageHeapT<Env>::InsertFreeLocked(Span *s, Span **retired, int *nretired) {
  auto retire = [&](Span *dead) {
    if (retired != nullptr)
      retired[(*nretired)++] = dead;
    else
      span_alloc_.Delete(dead);
  };
  SPANALLOC_DCHECK(lock_.IsHeld());
  // Coalesce with a free left neighbour in the same state (committed or
  // released). The page map's entry for the page before s may be stale (an
  // interior page of a free span); only a span that really is free and ends
  // right there qualifies.
  Span *left = env_.SpanOfPage(s->start - 1);
  if (left && left->state == SpanState::kFree && left->last_page() == s->start - 1 && !left->in_list &&
      left->released == s->released) {
    UnlinkFreeLocked(left);
    left->npages += s->npages;
    retire(s);
    s = left;
  }
  Span *right = env_.SpanOfPage(s->start + s->npages);
  if (right && right->state == SpanState::kFree && right->start == s->start + s->npages && !right->in_list &&
      right->released == s->released) {
    UnlinkFreeLocked(right);
    s->npages += right->npages;
    retire(right);
  }
  SetSpanPagesLocked(s);
  LinkFreeLocked(s);
}

template <class Env>
Span *PageHeapT<Env>::FindInSetLocked(FreeSet &set, Length n) {
  if (n <= kMaxListPages) {
    for (Length w = n / 64; w < sizeof(set.nonempty) / sizeof(set.nonempty[0]); w++) {
      uint64_t bits = set.nonempty[w];
      if (w == n / 64) bits &= ~uint64_t{0} << (n % 64);
      if (bits) return set.lists[w * 64 + __builtin_ctzll(bits)];
    }
  }
  return TreapBestFit(set.treap, n);
}

// Committed first: the best fit among committed free spans, and the best
// released one only when no committed span fits. A released span's pages
// fault in again when written, however well it fits; a committed span cut
// for a shorter request costs no page. (bench_large, 1 thread, with
// FreeCap's room: the best fit of both sets, a released span whenever it
// was the tighter fit, faulted 90.4 k pages for a peak RSS of 356 MiB;
// committed first 86.6 k and 339 MiB, tcmalloc's 86.4 k and 336 MiB.
// bench_realloc 20.0 k -> 17.5 k faults, bench_random unchanged.)
template <class Env>
Span *PageHeapT<Env>::FindLocked(Length n) {
  if (Span *committed = FindInSetLocked(sets_[0], n)) return committed;
  return FindInSetLocked(sets_[1], n);
}

namespace page_heap_internal {
// a += d (d may wrap, to subtract) on a counter written only under the
// page-heap lock and peeked without it: a plain load and store, not a
// locked read-modify-write (which also waits for every earlier store).
inline void AddLocked(std::atomic<uint64_t> &a, uint64_t d) {
  a.store(a.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
}
// One of the spares AllocLocked made sure of (page-heap lock held).
inline Span *TakeSpare(Span *(&spares)[2]) {
  for (Span *&spare : spares)
    if (spare != nullptr) {
      Span *s = spare;
      spare = nullptr;
      return s;
    }
  FatalInternal("page heap: split without a spare span");
}
}  // namespace page_heap_internal

// Takes n pages starting at an align_pages boundary out of free span s
// (already unlinked); the pieces before and after go back as free spans.
template <class Env>
Span *PageHeapT<Env>::SplitLocked(Span *s, Length n, Length align_pages) {
  PageId start = (s->start + align_pages - 1) / align_pages * align_pages;
  if (start > s->start) {
    Span *head = page_heap_internal::TakeSpare(spares_);
    head->start = s->start;
    head->npages = start - s->start;
    head->released = s->released;
    s->start = start;
    s->npages -= head->npages;
    SetSpanPagesLocked(head);
    LinkFreeLocked(head);
  }
  if (s->npages > n) {
    Span *tail = page_heap_internal::TakeSpare(spares_);
    tail->start = s->start + n;
    tail->npages = s->npages - n;
    tail->released = s->released;
    s->npages = n;
    SetSpanPagesLocked(tail);
    LinkFreeLocked(tail);
  }
  return s;
}

template <class Env>
Span *PageHeapT<Env>::AllocLocked(Length n, Length align_pages) {
  SPANALLOC_DCHECK(lock_.IsHeld());
  // The (at most two) Span objects a split needs, before anything is cut.
  for (Span *&spare : spares_)
    if (spare == nullptr && (spare = span_alloc_.New()) == nullptr) return nullptr;
  Span *s = FindLocked(n + align_pages - 1);
  if (s == nullptr) return nullptr;
  UnlinkFreeLocked(s);
  return SplitLocked(s, n, align_pages);
}

// Maps more address space: kGrowBytes, or the request rounded up to whole
// huge pages, 2 MiB-aligned (huge pages can back it; released state, so it
// costs no RSS until touched). Near the memory limit, every free committed
// span goes back first: the heap's footprint grows only when its own free
// memory cannot serve the request.
template <class Env>
bool PageHeapT<Env>::GrowUnlocked(Length n) {
  size_t bytes = n << kPageShift;
  if (NearLimit(bytes)) ReleaseAll();
  size_t grow = bytes < kGrowBytes ? kGrowBytes : (bytes + kHugePageSize - 1) & ~(kHugePageSize - 1);
  void *mem = env_.OsMap(grow, kHugePageSize);
  if (mem == nullptr && grow > bytes) {
    grow = bytes;
    mem = env_.OsMap(grow, kPageSize);
  }
  if (mem == nullptr) return false;
  // Huge pages pay off once the heap is big (fewer TLB misses and page
  // faults); in a small program a 2 MiB page would cost RSS it never uses.
  uint64_t mapped_before = heap_mapped_.fetch_add(grow, std::memory_order_relaxed);
  if (env_.options().hugepages && mapped_before >= kHugePagesFrom &&
      (reinterpret_cast<uintptr_t>(mem) & (kHugePageSize - 1)) == 0 && grow >= kHugePageSize)
    env_.OsAdviseHugePages(mem, grow & ~(kHugePageSize - 1));
  MutexLock l(lock_);
  if (!env_.PageMapEnsure(PageOf(mem), grow >> kPageShift)) {
    env_.OsUnmap(mem, grow);
    return false;
  }
  Span *s = span_alloc_.New();
  if (s == nullptr) {
    env_.OsUnmap(mem, grow);
    return false;
  }
  s->start = PageOf(mem);
  s->npages = grow >> kPageShift;
  s->released = true;  // fresh mappings are zero and not resident
  InsertFreeLocked(s);
  return true;
}

// ---- public -------------------------------------------------------------

template <class Env>
Span *PageHeapT<Env>::AllocLarge(Length n, Length align_pages, bool *zeroed) {
  MaybeRelease();
  // Grow and retry until a span is found: another thread may take the new
  // memory between our growth and our retry, which is no reason to fail.
  bool made_room = false, release_now = false;
  for (;;) {
    {
      MutexLock l(lock_);
      if (!made_room && NeedRoomLocked(n + align_pages - 1)) {
        made_room = release_now = true;
      } else if (Span *s = AllocLocked(n, align_pages)) {
        *zeroed = s->released;
        MakeLargeLocked(s);
        return s;
      }
    }
    if (release_now) {  // once per request; then serve it whatever it costs
      ReleaseAll();
      release_now = false;
      continue;
    }
    if (!GrowUnlocked(n + align_pages - 1)) return nullptr;
  }
}

// Free span s (unlinked, cut to size) becomes a large object.
template <class Env>
void PageHeapT<Env>::MakeLargeLocked(Span *s) {
  s->state = SpanState::kLarge;
  s->size_class = 0;
  env_.PageMapSetRange(s->start, s->npages, s, 0, false);
  page_heap_internal::AddLocked(large_bytes_, s->bytes());
  NoteInUseLocked();
  s->released = false;
}

template <class Env>
Span *PageHeapT<Env>::AllocLargeCommitted(Length n) {
  MutexLock l(lock_);
  for (Span *&spare : spares_)
    if (spare == nullptr && (spare = span_alloc_.New()) == nullptr) return nullptr;
  Span *s = FindInSetLocked(sets_[0], n);
  if (s == nullptr) return nullptr;
  UnlinkFreeLocked(s);
  s = SplitLocked(s, n, 1);
  MakeLargeLocked(s);
  return s;
}

// Near the memory limit, a request that no committed free span can serve
// would add to the footprint (fault in released pages, or grow): first every
// free committed span goes back (the caller releases, unlocked, and retries).
template <class Env>
bool PageHeapT<Env>::NeedRoomLocked(Length n) {
  return env_.options().memory_limit_bytes != 0 && free_bytes_.load(std::memory_order_relaxed) != 0 &&
         NearLimit(n << kPageShift) && FindInSetLocked(sets_[0], n) == nullptr;
}

template <class Env>
Span *PageHeapT<Env>::AllocSmall(Length n, uint32_t cl) {
  // Grow and retry until a span is found: another thread may take the new
  // memory between our growth and our retry, which is no reason to fail.
  bool made_room = false, release_now = false;
  for (;;) {
    {
      MutexLock l(lock_);
      if (!made_room && NeedRoomLocked(n)) {
        made_room = release_now = true;
      } else if (Span *s = AllocLocked(n, 1)) {
        s->state = SpanState::kSmall;
        s->size_class = uint8_t(cl);
        s->released = false;
        env_.PageMapSetRange(s->start, s->npages, s, MakeClassEntry(s->start_addr(), cl), true);
        page_heap_internal::AddLocked(small_span_bytes_, s->bytes());
        NoteInUseLocked();
        return s;
      }
    }
    if (release_now) {
      ReleaseAll();
      release_now = false;
      continue;
    }
    if (!GrowUnlocked(n)) return nullptr;
  }
}

template <class Env>
void PageHeapT<Env>::FreeLocked(Span *s, Span **retired, int *nretired) {
  if (s->state == SpanState::kSmall) {
    env_.PageMapSetRange(s->start, s->npages, s, 0, true);
    page_heap_internal::AddLocked(small_span_bytes_, 0 - s->bytes());
  } else {
    page_heap_internal::AddLocked(large_bytes_, 0 - s->bytes());
  }
  s->size_class = 0;
  s->in_list = false;
  InsertFreeLocked(s, retired, nretired);
}

template <class Env>
void PageHeapT<Env>::Free(Span *const *spans, size_t n) {
  {
    MutexLock l(lock_);
    // The neighbours' records, which coalescing reads, load together first
    // (under the lock: the page map's writers hold it; a prefetch of a
    // stale entry's record is harmless).
    for (size_t i = 0; i < n; i++) {
      __builtin_prefetch(env_.SpanOfPage(spans[i]->start - 1));
      __builtin_prefetch(env_.SpanOfPage(spans[i]->start + spans[i]->npages));
    }
    // The Span objects merged away go back to span_alloc_ a chunk at a time
    // (one metadata lock each). Until then they are unreachable: a stale
    // page-map entry can lead to one only from an interior page of a free
    // span, which no span being freed borders.
    constexpr size_t kChunk = 32;
    Span *retired[2 * kChunk];
    for (size_t i = 0; i < n; i += kChunk) {
      int nretired = 0;
      for (size_t j = i; j < n && j < i + kChunk; j++) FreeLocked(spans[j], retired, &nretired);
      span_alloc_.Delete(retired, size_t(nretired));
    }
  }
  // The background thread frees spans while it holds a central lock
  // (CentralList::ReleaseSlots): it releases afterwards, with no lock held.
  if (!env_.OnScavengerThread()) MaybeRelease();
  NotifyScavenger();
}

// After memory became free: the background thread is asked for (started
// lazily, at the caller's next lock-free point) or woken when the heap
// holds more than it should keep. Two relaxed loads when it need not act.
template <class Env>
void PageHeapT<Env>::NotifyScavenger() {
  uint64_t free_now = free_bytes_.load(std::memory_order_relaxed);
  uint64_t retain = env_.RetainBytes();
  if (free_now > retain) env_.NotifyScavenger(free_now - retain);
}

template <class Env>
bool PageHeapT<Env>::ResizeInPlace(Span *s, Length n) {
  MutexLock l(lock_);
  if (n == s->npages) return true;
  if (n < s->npages) {
    Span *tail = span_alloc_.New();
    if (tail == nullptr) return false;
    tail->start = s->start + n;
    tail->npages = s->npages - n;
    tail->released = false;
    s->npages = n;
    page_heap_internal::AddLocked(large_bytes_, 0 - tail->bytes());
    InsertFreeLocked(tail);
    return true;  // (the scavenger hears of it at the next Free)
  }
  Length need = n - s->npages;
  PageId end = s->start + s->npages;
  Span *right = env_.SpanOfPage(end);
  if (right == nullptr || right->state != SpanState::kFree || right->start != end || right->npages < need) return false;
  UnlinkFreeLocked(right);
  if (right->npages > need) {
    Span *rest = span_alloc_.New();
    if (rest == nullptr) {
      LinkFreeLocked(right);
      return false;
    }
    rest->start = right->start + need;
    rest->npages = right->npages - need;
    rest->released = right->released;
    SetSpanPagesLocked(rest);
    LinkFreeLocked(rest);
  }
  span_alloc_.Delete(right);
  env_.PageMapSetRange(end, need, s, 0, false);
  s->npages = n;
  page_heap_internal::AddLocked(large_bytes_, need << kPageShift);
  return true;
}

template <class Env>
Span *PageHeapT<Env>::Remap(Span *s, Length n) {
  // Growing only: an mremap that shrinks would leave the tail unmapped, and
  // the page-map update below would run over n - npages (negative) pages.
  if (n <= s->npages) return nullptr;
  void *old_addr = PageAddr(s->start);
  size_t old_bytes = s->bytes(), new_bytes = n << kPageShift;
  // In place first: the address space after the block may be free. Not
  // when the page after it is the heap's: that is a span (its mapping is in
  // the way anyway), or the hole a move of one leaves until it is mapped
  // again (below; its pages still lead to the moving span), which s must
  // not grow into.
  bool in_place;
  {
    MutexLock l(lock_);
    if (!env_.PageMapEnsure(s->start, n)) return nullptr;
    in_place = env_.SpanOfPage(s->start + s->npages) == nullptr;
  }
  if (in_place && env_.OsRemapInPlace(old_addr, old_bytes, new_bytes)) {
    MutexLock l(lock_);
    env_.PageMapSetRange(s->start + s->npages, n - s->npages, s, 0, false);
    page_heap_internal::AddLocked(large_bytes_, new_bytes - old_bytes);
    s->npages = n;
    return s;
  }
  Span *moved = span_alloc_.New();
  if (moved == nullptr) return nullptr;
  // The destination's page-map leaves exist before anything moves: a failure
  // afterwards could neither be undone nor reported as ENOMEM.
  void *q = env_.OsReserve(new_bytes, kPageSize);
  bool ready = q != nullptr;
  if (ready) {
    MutexLock l(lock_);
    ready = env_.PageMapEnsure(PageOf(q), n);
  }
  if (!ready || !env_.OsRemapMoveTo(old_addr, old_bytes, new_bytes, q)) {
    if (q != nullptr) env_.OsUnreserve(q, new_bytes);
    span_alloc_.Delete(moved);
    return nullptr;
  }
  bool refilled = env_.OsMapFixed(old_addr, old_bytes);  // the old range: fresh zero pages
  MutexLock l(lock_);
  moved->start = PageOf(q);
  moved->npages = n;
  moved->state = SpanState::kLarge;
  env_.PageMapSetRange(moved->start, n, moved, 0, false);
  page_heap_internal::AddLocked(large_bytes_, new_bytes - old_bytes);
  if (refilled) {
    s->released = true;  // zero pages, not resident
    InsertFreeLocked(s);
  } else {
    // The old range stays unmapped: forget it (its page-map entries must
    // not lead to a span).
    env_.PageMapSetRange(s->start, s->npages, nullptr, 0, false);
    span_alloc_.Delete(s);
  }
  return moved;
}

// Free committed memory kept before the oldest goes back at once: as much
// as lets the heap's committed bytes (in use plus free) reach twice the
// peak of its in-use bytes, or the option's floor, whichever is larger. The
// heap then never holds more than twice its peak for longer than the
// release delay (as with a cap of the peak alone, which allowed in use plus
// the peak), yet a program whose use dips and climbs again reuses the pages
// it freed instead of faulting them in afresh; what stays unused goes back
// after the delay. (bench_large's use swings between 50 and 255 MiB over a
// 352 MiB heap: a cap of the peak alone released 60 MiB in mid-run and
// 100 MiB more during the final frees, 63 madvise calls and 14 k faults
// the program paid for; a fixed 64 MiB cap before that made 167 of 300
// frees madvise.)
template <class Env>
uint64_t PageHeapT<Env>::FreeCap() const {
  uint64_t peak = peak_in_use_.load(std::memory_order_relaxed);
  uint64_t in_use = large_bytes_.load(std::memory_order_relaxed) + small_span_bytes_.load(std::memory_order_relaxed);
  return std::max<uint64_t>(env_.options().free_cap_bytes, 2 * peak - std::min(in_use, peak));
}

template <class Env>
void PageHeapT<Env>::NoteInUseLocked() {
  uint64_t in_use = large_bytes_.load(std::memory_order_relaxed) + small_span_bytes_.load(std::memory_order_relaxed);
  if (in_use > peak_in_use_.load(std::memory_order_relaxed)) peak_in_use_.store(in_use, std::memory_order_relaxed);
}

template <class Env>
void PageHeapT<Env>::MaybeRelease() {
  uint64_t now = env_.NowMillis();
  // Unlocked peek: a stale read only delays the release to the next call.
  uint64_t last = last_release_check_.load(std::memory_order_relaxed);
  uint64_t free_now = free_bytes_.load(std::memory_order_relaxed);
  if (now - last < 100 && free_now <= FreeCap()) return;
  if (!lock_.TryLock()) return;  // someone else is in the heap; they will check
  last_release_check_.store(now, std::memory_order_relaxed);
  ReleaseLocked(NearLimit() ? ReleaseMode::kAll : ReleaseMode::kDue, now);  // unlocks
}

// True when the heap's committed memory (in use plus free committed), with
// `extra` bytes more, passes 3/4 of the memory limit: then every free
// committed page goes back at once. The limit never makes an allocation
// fail; it only makes the heap give memory back sooner.
template <class Env>
bool PageHeapT<Env>::NearLimit(uint64_t extra) const {
  uint64_t limit = env_.options().memory_limit_bytes;
  if (limit == 0) return false;
  uint64_t committed = large_bytes_.load(std::memory_order_relaxed) +
                       small_span_bytes_.load(std::memory_order_relaxed) + free_bytes_.load(std::memory_order_relaxed);
  return committed + extra > limit / 4 * 3;
}

// Everything free goes back, including what another thread (the background
// thread) is releasing at this moment: malloc_trim returns when the heap holds
// no free committed page (a bounded wait: in-flight batches are 16 spans).
template <class Env>
size_t PageHeapT<Env>::ReleaseAll() {
  lock_.Lock();
  size_t total = ReleaseLocked(ReleaseMode::kAll, env_.NowMillis());
  for (int i = 0; i < 10000; i++) {
    lock_.Lock();
    bool busy = in_flight_ != nullptr;
    lock_.Unlock();
    if (!busy) break;
    sched_yield();
  }
  return total;
}

template <class Env>
uint64_t PageHeapT<Env>::ReleaseDue(size_t *released) {
  uint64_t now = env_.NowMillis();
  lock_.Lock();
  last_release_check_.store(now, std::memory_order_relaxed);
  *released = ReleaseLocked(NearLimit() ? ReleaseMode::kAll : ReleaseMode::kDue, now);  // unlocks
  MutexLock l(lock_);
  uint64_t free_now = free_bytes_.load(std::memory_order_relaxed);
  uint64_t retain = env_.RetainBytes();
  if (parked_head_ != nullptr && free_now > retain + kParkedSlack) return env_.NowMillis();
  if (queue_head_ != nullptr && free_now > retain) return queue_head_->free_since + env_.options().release_delay_ms;
  return kNever;
}

// Huge-page mode: of free span s (unlinked), keeps only its whole 2 MiB
// ranges for release; the ends before and after them are parked (they
// share a huge page with memory in use). Returns the part to release, or
// nullptr when none is a whole huge page (then all of s is parked).
template <class Env>
Span *PageHeapT<Env>::TrimToHugePagesLocked(Span *s) {
  constexpr Length kHugePages = kHugePageSize >> kPageShift;
  PageId first = (s->start + kHugePages - 1) / kHugePages * kHugePages;
  PageId end = (s->start + s->npages) / kHugePages * kHugePages;
  auto park = [this](Span *p) {
    LinkFreeLocked(p);  // committed: counted free, queued on the time queue...
    QueueRemoveLocked(p);
    QueueAppendLocked(p, true);  // ...moved to the parked queue
  };
  // The Span objects of the ends first: out of metadata memory, nothing is
  // cut and all of s waits parked (releasing is never worth an abort).
  Length lens[2] = {first < end ? first - s->start : 0, first < end ? s->start + s->npages - end : 0};
  Span *pieces[2] = {};
  for (int side = 0; side < 2 && first < end; side++)
    if (lens[side] != 0 && (pieces[side] = span_alloc_.New()) == nullptr) end = first;
  if (first >= end) {
    for (Span *piece : pieces)
      if (piece != nullptr) span_alloc_.Delete(piece);
    SetSpanPagesLocked(s);
    park(s);
    return nullptr;
  }
  for (int side = 0; side < 2; side++) {
    Length len = lens[side];
    if (len == 0) continue;
    Span *piece = pieces[side];
    piece->start = side == 0 ? s->start : end;
    piece->npages = len;
    piece->released = false;
    if (side == 0) s->start = first;
    s->npages -= len;
    SetSpanPagesLocked(piece);
    park(piece);
  }
  SetSpanPagesLocked(s);
  return s;
}

// Over the cap, before the delay: of free span s (committed, unlinked;
// free_bytes_ no longer counts it), only the excess goes back, from its end.
// The rest goes back to the free structures as it was, at the head of the
// queue (its age kept): a large block freed a moment ago is then reused
// without faulting its pages in again (bench_large released whole spans
// here, up to 46 MiB for an excess of 1 MiB). In huge-page mode the cut
// falls on a 2 MiB boundary, so the part released is whole huge pages.
// Returns the part to release (s itself when all of it is excess).
template <class Env>
Span *PageHeapT<Env>::TrimToExcessLocked(Span *s, uint64_t excess) {
  Length release = Length((excess + kPageSize - 1) >> kPageShift);
  if (release >= s->npages) return s;
  PageId cut = s->start + s->npages - release;
  if (env_.options().hugepages) {
    constexpr Length kHugePages = kHugePageSize >> kPageShift;
    cut = cut / kHugePages * kHugePages;
    if (cut <= s->start) return s;
  }
  Span *tail = span_alloc_.New();
  if (tail == nullptr) return s;  // release all of s, as before
  tail->start = cut;
  tail->npages = s->start + s->npages - cut;
  tail->released = false;
  s->npages = cut - s->start;
  uint64_t since = s->free_since;
  SetSpanPagesLocked(s);
  LinkFreeLocked(s);  // appended to the queue as new: back to the head, as old as it was
  QueueRemoveLocked(s);
  s->free_since = since;
  s->lru_prev = nullptr;
  s->lru_next = queue_head_;
  if (queue_head_) {
    queue_head_->lru_prev = s;
  } else {
    queue_tail_ = s;
  }
  queue_head_ = s;
  s->in_lru = true;
  s->parked = false;
  SetSpanPagesLocked(tail);
  return tail;
}

// The next span to release, taken out of the free structures (nullptr when
// none is due): the oldest queued span once past the delay while the heap
// holds more than the retained bytes, at once above the cap; parked spans
// under pressure; everything in mode kAll.
template <class Env>
Span *PageHeapT<Env>::TakeDueLocked(ReleaseMode mode, uint64_t now) {
  for (;;) {
    uint64_t free_now = free_bytes_.load(std::memory_order_relaxed);
    bool all = mode == ReleaseMode::kAll;
    bool over_cap = free_now > FreeCap();
    Span *s = queue_head_;
    bool due = s != nullptr && now - s->free_since >= env_.options().release_delay_ms && free_now > env_.RetainBytes();
    if (s != nullptr && (all || over_cap || due)) {
      UnlinkFreeLocked(s);
      if (!all && !due) s = TrimToExcessLocked(s, free_now - FreeCap());
      if (all || over_cap || !env_.options().hugepages) return s;
      if (Span *whole = TrimToHugePagesLocked(s)) return whole;
      continue;  // all of s was parked
    }
    s = parked_head_;
    if (s != nullptr && (all || over_cap || free_now > env_.RetainBytes() + kParkedSlack)) {
      UnlinkFreeLocked(s);
      return s;
    }
    return nullptr;
  }
}

// Called with lock_ held; returns with it released. Takes due spans out of
// the free structures onto the in-flight list, madvises them unlocked, then
// re-inserts them released; a round in which the OS refused a release ends
// there.
template <class Env>
size_t PageHeapT<Env>::ReleaseLocked(ReleaseMode mode, uint64_t now) {
  size_t total = 0;
  for (;;) {
    constexpr int kBatch = 16;
    Span *batch[kBatch];
    int count = 0;
    while (count < kBatch) {
      Span *s = TakeDueLocked(mode, now);
      if (s == nullptr) break;
      s->state = SpanState::kReleasing;  // neighbours must not merge it meanwhile
      s->lru_prev = nullptr;
      s->lru_next = in_flight_;
      if (in_flight_) in_flight_->lru_prev = s;
      in_flight_ = s;
      batch[count++] = s;
    }
    lock_.Unlock();
    if (count == 0) return total;
    bool refused = false;
    for (int i = 0; i < count; i++) {
      if (env_.OsRelease(PageAddr(batch[i]->start), batch[i]->bytes())) {
        batch[i]->released = true;
        total += batch[i]->bytes();
        env_.PageMapReleaseInterior(batch[i]->start, batch[i]->npages);
      } else {
        refused = true;
      }
    }
    lock_.Lock();
    for (int i = 0; i < count; i++) {
      Span *s = batch[i];
      if (s->lru_prev)
        s->lru_prev->lru_next = s->lru_next;
      else
        in_flight_ = s->lru_next;
      if (s->lru_next) s->lru_next->lru_prev = s->lru_prev;
      s->lru_next = s->lru_prev = nullptr;
      InsertFreeLocked(s);
    }
    // The OS refused (madvise fails for good on locked memory): the spans
    // are back, committed and due again; taking them again now would loop.
    if (refused) {
      lock_.Unlock();
      return total;
    }
  }
}

template <class Env>
void PageHeapT<Env>::AfterForkChild() {
  // Only this thread exists; lock_ was reset by the fork handler.
  MutexLock l(lock_);
  while (Span *s = in_flight_) {
    in_flight_ = s->lru_next;
    s->lru_next = s->lru_prev = nullptr;
    s->released = false;
    InsertFreeLocked(s);
  }
}

template <class Env>
PageHeapStats PageHeapT<Env>::Stats() {
  MutexLock l(lock_);
  return PageHeapStats{free_bytes_.load(std::memory_order_relaxed), released_bytes_, large_bytes_, small_span_bytes_,
                       span_alloc_.in_use()};
}

template <class Env>
const char *PageHeapT<Env>::Validate() {
  MutexLock l(lock_);
  uint64_t free_sum = 0, released_sum = 0;
  auto check = [&](Span *s) -> const char * {
    if (s->state != SpanState::kFree) return "free structure holds a span not marked free";
    if (env_.SpanOfPage(s->start) != s || env_.SpanOfPage(s->last_page()) != s)
      return "free span's ends not in page map";
    Span *left = env_.SpanOfPage(s->start - 1);
    if (left && left->state == SpanState::kFree && left->last_page() == s->start - 1 && left->released == s->released)
      return "uncoalesced neighbours";
    if (s->released == s->in_lru) return "released span queued, or committed span not queued";
    (s->released ? released_sum : free_sum) += s->bytes();
    return nullptr;
  };
  for (int which = 0; which < 2; which++) {
    FreeSet &set = sets_[which];
    for (Length n = 1; n <= kMaxListPages; n++) {
      bool bit = set.nonempty[n / 64] & (uint64_t{1} << (n % 64));
      if (bit != (set.lists[n] != nullptr)) return "non-empty bitmap out of date";
      for (Span *s = set.lists[n]; s; s = s->next) {
        if (s->npages != n) return "span in the wrong length list";
        if (s->released != (which == 1)) return "span in the wrong free set";
        if (const char *e = check(s)) return e;
      }
    }
    // Walk the treap iteratively with an explicit stack (depth is O(log n)).
    Span *stack[128];
    int sp = 0;
    if (set.treap) stack[sp++] = set.treap;
    while (sp > 0) {
      Span *s = stack[--sp];
      if (s->npages <= kMaxListPages) return "short span in treap";
      if (s->released != (which == 1)) return "span in the wrong free set";
      if (s->left && (!Less(s->left, s) || s->left->priority > s->priority)) return "treap order broken";
      if (s->right && (!Less(s, s->right) || s->right->priority > s->priority)) return "treap order broken";
      if (const char *e = check(s)) return e;
      if (sp + 2 > 128) return "treap too deep";
      if (s->left) stack[sp++] = s->left;
      if (s->right) stack[sp++] = s->right;
    }
  }
  if (free_sum != free_bytes_.load(std::memory_order_relaxed)) return "free byte count out of date";
  if (released_sum != released_bytes_) return "released byte count out of date";
  return nullptr;
}

}  // namespace spanalloc
