// The central list's member functions (central_list.h says what a central
// list is, its lock and its invariants). Included by central_list.cc, which
// instantiates them for the production Env, and by tests that instantiate
// them for a fake page heap.
#pragma once

#include <cstddef>

#include "central_list.h"
#include "free_list.h"

namespace spanalloc {

namespace central_list_internal {
// Prefetch of the lines of s's free bitmap past the record's first line
// (span.h), up to the word of object objects - 1: a span of a class of more
// than 192 objects. s may be null or wild: a prefetch never faults (and the
// address is integer arithmetic).
inline void PrefetchBitmap(const Span *s, uint32_t objects) {
  uintptr_t rec = reinterpret_cast<uintptr_t>(s);
  for (uintptr_t at = 64; at <= offsetof(Span, free_bits) + (objects - 1) / 64 * 8; at += 64)
    __builtin_prefetch(reinterpret_cast<const void *>(rec + at), 1);
}
// Bit count without libgcc's helper (the library links only libc).
inline uint32_t PopCount(uint64_t w) {
  w -= (w >> 1) & 0x5555555555555555ull;
  w = (w & 0x3333333333333333ull) + ((w >> 2) & 0x3333333333333333ull);
  w = (w + (w >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return uint32_t((w * 0x0101010101010101ull) >> 56);
}

// Calls f(word, mask) for the bitmap words that objects [first, first + n)
// of a span cover, mask selecting their bits in that word.
template <class F>
inline void ForEachRangeWord(uint32_t first, uint32_t n, F f) {
  for (uint32_t i = first, end = first + n; i < end;) {
    uint32_t b = i % 64;
    uint32_t m = end - i < 64 - b ? end - i : 64 - b;
    f(i / 64, (m == 64 ? ~uint64_t{0} : (uint64_t{1} << m) - 1) << b);
    i += m;
  }
}
}  // namespace central_list_internal

// Set up on first use, so an unused class's list is never touched (no RSS).
template <class Env>
void CentralListT<Env>::InitLocked() {
  InitLinkSecret();  // before this class's first link is written
  if (cl_ == 0) cl_ = env_.ListClass(this);
  if (cl_ == 0 || cl_ >= kNumClasses) FatalInternal("central list: no class");
  batch_ = env_.Shape(cl_).batch;
  // Transfer slots hold at most ~256 KiB per class.
  size_t batch_bytes = size_t(batch_) * env_.Shape(cl_).size;
  size_t slots = (256 * 1024) / (batch_bytes ? batch_bytes : 1);
  max_slots_ = int(slots < 1 ? 1 : (slots > kMaxSlots ? kMaxSlots : slots));
}

template <class Env>
void CentralListT<Env>::LinkSpanLocked(Span *s) {
  s->prev = nullptr;
  s->next = partial_;
  if (partial_) partial_->prev = s;
  partial_ = s;
  s->in_list = true;
}

template <class Env>
void CentralListT<Env>::UnlinkSpanLocked(Span *s) {
  if (s->prev)
    s->prev->next = s->next;
  else
    partial_ = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = nullptr;
  s->in_list = false;
}

template <class Env>
bool CentralListT<Env>::GrowLocked() {
  SPANALLOC_DCHECK(lock_.IsHeld());
  const ClassShape &shape = env_.Shape(cl_);
  Span *s = env_.AllocSpan(shape.pages, cl_);
  if (s == nullptr) return false;
  uint32_t n = shape.objects;
  // Every word is written: the Span may have served a class with more
  // objects, whose bits past n would break free_count == popcount(free_bits).
  for (uint32_t w = 0; w < kMaxObjectsPerSpan / 64; w++) {
    uint32_t bits = n <= w * 64 ? 0 : (n - w * 64 < 64 ? n - w * 64 : 64);
    s->free_bits[w] = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
  }
  s->free_count = n;
  spans_++;
  span_free_ += n;
  LinkSpanLocked(s);
  return true;
}

template <class Env>
int CentralListT<Env>::FromSpansLocked(void **head, void **tail, int n, ObjectRun *run) {
  SPANALLOC_DCHECK(lock_.IsHeld());
  const ClassShape &shape = env_.Shape(cl_);
  const uint32_t size = shape.size;
  void *first = nullptr;
  void *last = nullptr;
  int got = 0;
  while (got < n) {
    if (partial_ == nullptr && !GrowLocked()) break;
    Span *s = partial_;
    char *base = reinterpret_cast<char *>(s->start_addr());
    // One run per call at most, from a span whose objects are all free;
    // otherwise the lowest free objects, linked.
    if (run != nullptr && run->count == 0 && n - got >= kMinRun && s->free_count == shape.objects) {
      uint32_t k = uint32_t(n - got) < shape.objects ? uint32_t(n - got) : shape.objects;
      if (k >= uint32_t(kMinRun) && reinterpret_cast<uintptr_t>(base + size_t(k - 1) * shape.size) / kOsPage !=
                                        reinterpret_cast<uintptr_t>(base) / kOsPage) {
        central_list_internal::ForEachRangeWord(0, k, [s](uint32_t w, uint64_t mask) { s->free_bits[w] &= ~mask; });
        s->free_count -= k;
        *run = ObjectRun{base, k};
        got += int(k);
        if (s->free_count == 0) UnlinkSpanLocked(s);
        continue;
      }
    }
    for (uint32_t w = 0; got < n && s->free_count > 0; w++) {
      uint64_t bits = s->free_bits[w];
      while (bits && got < n) {
        int b = __builtin_ctzll(bits);
        bits &= bits - 1;
        void *obj = base + size_t(w * 64 + b) * size;
        if (last)
          SetLink(last, obj);
        else
          first = obj;
        last = obj;
        got++;
        s->free_count--;
      }
      s->free_bits[w] = bits;
    }
    if (s->free_count == 0) UnlinkSpanLocked(s);
  }
  span_free_ -= got;
  if (last) SetLink(last, nullptr);
  *head = first;
  *tail = last;
  return got;
}

// Objects go back in runs: consecutive objects of one span (a batch of
// frees made in allocation order, or of one freed range, mostly is one run)
// set their bits one by one, but the span's count, the list's count and the
// span's place on the partial list are updated once per run. Per object: a
// range test against the run's span, one multiply for both the object-start
// test and the index (no division), the link, and the bit.
template <class Env>
void CentralListT<Env>::ToSpansLocked(void *head, int n) {
  SPANALLOC_DCHECK(lock_.IsHeld());
  const uint32_t size = env_.Shape(cl_).size;
  const uint32_t objects = env_.Shape(cl_).objects;
  // off % size == 0 exactly when off * magic (mod 2^64) < magic, and then
  // off / size is the high half of the product (off < 2^32; size_classes.h).
  const uint64_t magic = ~uint64_t{0} / size + 1;
  const uint64_t objects_bytes = uint64_t(objects) * size;
  // Spans whose objects are all back, for the page heap in one call.
  Span *empty[kFreeBatch];
  int nempty = 0;
  auto run_to_span = [&](Span *span, uint32_t count) {
    if (!RunToSpanLocked(span, count)) return;
    empty[nempty++] = span;
    if (nempty == kFreeBatch) {
      env_.FreeSpans(empty, nempty);
      nempty = 0;
    }
  };
  Span *s = nullptr;
  uintptr_t base = 0;
  uint64_t limit = 0;  // objects_bytes while s is a span of this class, else 0
  uint32_t run = 0;    // objects of s back since its counts were updated
  void *prev = nullptr;
  for (int i = 0; i < n; i++) {
    void *obj = head;
    // The full check of every link (free_list.h), before obj is touched: an
    // object start in a small span of this class.
    uint64_t off = reinterpret_cast<uintptr_t>(obj) - base;
    if (off >= limit) {
      if (run != 0) run_to_span(s, run);
      run = 0;
      s = env_.SpanOf(obj);
      // The bitmap's lines past the first load alongside the header's, not
      // after the index (a new run's span is usually cold: last touched when
      // it was carved).
      central_list_internal::PrefetchBitmap(s, objects);
      if (s == nullptr || s->state != SpanState::kSmall || s->size_class != cl_) BadObjectLocked(prev);
      base = s->start_addr();
      limit = objects_bytes;
      off = reinterpret_cast<uintptr_t>(obj) - base;
      if (off >= limit) BadObjectLocked(prev);
    }
    unsigned __int128 product = static_cast<unsigned __int128>(off) * magic;
    if (SPANALLOC_UNLIKELY(uint64_t(product) >= magic)) BadObjectLocked(prev);
    uint64_t idx = uint64_t(product >> 64);
    head = LinkOf(obj);  // the last object's (null, unused): obj is ours
    prev = obj;
    uint64_t bit = uint64_t{1} << (idx % 64);
    uint64_t &word = s->free_bits[idx / 64];
    if (SPANALLOC_UNLIKELY(word & bit)) FatalMisuse("free", obj, "double free", "already free in its span", size);
    word |= bit;
    run++;
  }
  if (run != 0) run_to_span(s, run);
  if (nempty != 0) env_.FreeSpans(empty, nempty);
}

// run more objects of s are free (their bits set). Links s to the partial
// list if it was full. Returns true when every object is back and s is not
// the class's only partial span (kept against thrashing): s is then off the
// list and out of the counts, for the caller to return to the page heap.
template <class Env>
bool CentralListT<Env>::RunToSpanLocked(Span *s, uint32_t run) {
  const uint32_t objects = env_.Shape(cl_).objects;
  uint32_t before = s->free_count;
  s->free_count = uint16_t(before + run);
  span_free_ += run;
  if (before == 0) LinkSpanLocked(s);
  if (s->free_count == objects && !(partial_ == s && s->next == nullptr)) {
    UnlinkSpanLocked(s);
    span_free_ -= objects;
    spans_--;
    return true;
  }
  return false;
}

// A batch object that is not an object start in a span of this class: the
// link that led to it (prev's) was overwritten, or the list is broken.
template <class Env>
void CentralListT<Env>::BadObjectLocked(const void *prev) {
  if (prev != nullptr) FatalCorruptLink(prev, cl_, "free");
  FatalInternal("central list: object not in a span of its class");
}

template <class Env>
int CentralListT<Env>::RemoveRange(void **head, void **tail, int n, ObjectRun *run) {
  if (run != nullptr) *run = ObjectRun{};
  MutexLock l(lock_);
  if (SPANALLOC_UNLIKELY(batch_ == 0)) InitLocked();
  if (nslots_ > 0 && n > 1) {  // a whole batch, even if fewer were asked for
    Batch b = slots_[--nslots_];
    *head = b.head;
    *tail = b.tail;
    return int(batch_);
  }
  return FromSpansLocked(head, tail, n, run);
}

template <class Env>
void CentralListT<Env>::InsertRun(ObjectRun run) {
  if (run.count == 0) return;
  MutexLock l(lock_);
  const ClassShape &shape = env_.Shape(cl_);
  Span *s = env_.SpanOf(run.start);
  uintptr_t off = s != nullptr ? reinterpret_cast<uintptr_t>(run.start) - s->start_addr() : 0;
  uint32_t first = uint32_t(off / shape.size);
  if (s == nullptr || s->state != SpanState::kSmall || s->size_class != cl_ || off != uint64_t(first) * shape.size ||
      uint64_t(first) + run.count > shape.objects)
    FatalInternal("central list: run not in a span of its class");
  central_list_internal::ForEachRangeWord(first, run.count, [s](uint32_t w, uint64_t mask) {
    if (s->free_bits[w] & mask) FatalInternal("central list: run given back is already free in its span");
    s->free_bits[w] |= mask;
  });
  if (RunToSpanLocked(s, run.count)) env_.FreeSpan(s);
}

template <class Env>
void CentralListT<Env>::InsertRange(void *head, int n) {
  void *tail = head;
  if (n == int(env_.Shape(cl_).batch))
    for (int i = 1; i < n; i++) {
      void *next = LinkOf(tail);  // CheckedLinkOf, through Env
      if (SPANALLOC_UNLIKELY(!env_.LinkIsValid(next, cl_))) FatalCorruptLink(tail, cl_, "free");
      tail = next;
    }
  InsertRange(head, tail, n);
}

template <class Env>
void CentralListT<Env>::InsertRange(void *head, void *tail, int n) {
  MutexLock l(lock_);
  if (SPANALLOC_UNLIKELY(batch_ == 0)) InitLocked();
  if (n == int(batch_) && nslots_ < max_slots_) {
    slots_[nslots_++] = Batch{head, tail};
    return;
  }
  ToSpansLocked(head, n);
}

template <class Env>
bool CentralListT<Env>::TryInsertBatch(void *head, void *tail) {
  MutexLock l(lock_);
  if (SPANALLOC_UNLIKELY(batch_ == 0)) InitLocked();
  if (nslots_ >= max_slots_) return false;
  slots_[nslots_++] = Batch{head, tail};
  return true;
}

template <class Env>
void CentralListT<Env>::ReleaseSlots() {
  MutexLock l(lock_);
  while (nslots_ > 0) {
    Batch b = slots_[--nslots_];
    ToSpansLocked(b.head, int(batch_));
  }
}

template <class Env>
CentralStats CentralListT<Env>::Stats() {
  MutexLock l(lock_);
  if (batch_ == 0) return CentralStats{0, 0, 0};  // never used
  return CentralStats{uint64_t(nslots_) * batch_, span_free_, spans_};
}

template <class Env>
const char *CentralListT<Env>::Validate() {
  MutexLock l(lock_);
  if (batch_ == 0) return partial_ == nullptr && nslots_ == 0 ? nullptr : "unused list holds objects";
  uint64_t free_sum = 0;
  for (Span *s = partial_; s; s = s->next) {
    if (s->state != SpanState::kSmall || s->size_class != cl_) return "foreign span on a central list";
    uint32_t pop = 0;
    for (uint64_t w : s->free_bits) pop += central_list_internal::PopCount(w);
    if (pop != s->free_count) return "span free count differs from its bitmap";
    if (s->free_count == 0 || s->free_count > env_.Shape(cl_).objects) return "span free count out of range";
    free_sum += s->free_count;
  }
  if (free_sum != span_free_) return "central free count out of date";
  for (int i = 0; i < nslots_; i++) {
    int count = 1;
    void *p = slots_[i].head;
    while (LinkOf(p) != nullptr && count <= int(batch_)) {
      p = LinkOf(p);
      if (!env_.LinkIsValid(p, cl_)) return "transfer slot holds a corrupted link";
      count++;
    }
    if (count != int(batch_) || p != slots_[i].tail) return "transfer slot is not one whole batch";
  }
  return nullptr;
}

}  // namespace spanalloc
