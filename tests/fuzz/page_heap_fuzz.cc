// libFuzzer harness for the page heap alone, on a fake of everything below it
// (tests/fakes/fake_page_heap_env.h: address space that faults when touched,
// a page map in arrays, a clock, options, OS calls that fail on demand).
//
// The input is a header (options: release delay, cap, retained bytes, memory
// limit, huge pages) and then a program of operations on 48 slots: large
// spans of every length and alignment, small spans, free (of up to four
// spans in one call too), realloc as the
// allocator does it (resize in place, else a committed free span, else
// remap), release all / due /
// maybe, the clock moving, OS refusals, gaps in the address space, and
// "another thread": the next operations run inside one of the calls the page
// heap makes without its lock (while it maps, releases, remaps, or wakes the
// background thread).
//
// After every top-level operation:
//   - Validate() (free lists, treap, coalescing, byte counts);
//   - the handed-out spans never overlap, have the length and alignment
//     asked for, are mapped, and every one of their pages leads to them in
//     the page map, with class entries for small spans and 0 for large ones;
//   - statistics: large and small bytes equal the model's; mapped pages =
//     in use + free committed + released (every page accounted for);
//   - released bytes = mapped pages never written since they were mapped or
//     released (the model writes every page it is given);
//   - a span said to be zeroed has no written page; no failure unless the
//     fake OS refused something; no release of a page in use.
// At the end everything is freed and released: the heap must hold only
// released pages and as many Span objects as free spans.
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "../fakes/fake_page_heap_env.h"
#include "allocator.h"
#include "fuzz_input.h"
#include "page_heap_impl.h"

namespace {

using namespace spanalloc;
using fake::FakePageHeap;
using fake::FakePageHeapEnv;
using fake::FakeWorld;

bool g_trace = getenv("PAGE_HEAP_FUZZ_TRACE") != nullptr;

using fuzz::Fail;
#define CHECK FUZZ_CHECK

class Input : public fuzz::ByteReader {
 public:
  using ByteReader::ByteReader;
  // Span lengths: mostly short (length lists), some long (treap), a few huge.
  Length pages() {
    uint8_t k = u8();
    if (k < 128) return 1 + k % 16;
    if (k < 192) return 1 + u8() % 128;
    if (k < 240) return 129 + u16() % 1024;
    return 1 + u16() % 16384;
  }
  Length align() {
    uint8_t b = u8();
    return b < 192 ? 1 : Length{1} << (b % 10);
  }
};

struct Live {
  Span *s = nullptr;
  PageId start = 0;
  Length n = 0;
  uint32_t cl = 0;  // 0: large
};

constexpr int kSlots = 48;
// The hooks at which "another thread" may run (FakeWorld::hook's names).
constexpr const char *kHookNames[] = {"OsMap",     "OsRelease",  "OsRemapInPlace",  "OsRemapMoveTo",
                                      "OsReserve", "OsMapFixed", "NotifyScavenger", "OsAdviseHugePages"};

class Harness {
 public:
  Harness(FakeWorld &w, Input &in) : w_(w), in_(in) {}

  void Run() {
    ReadHeader();
    heap_ = std::make_unique<FakePageHeap>(FakePageHeapEnv{&w_});
    w_.heap_lock = &heap_->lock();
    w_.hook = [this](const char *what) { Hook(what); };
    for (int step = 0; !in_.done() && step < 400; step++) {
      Step();
      CheckAll();
    }
    // Everything back, everything released.
    nest_ops_ = 0;
    w_.fail_map = w_.fail_ensure = w_.fail_release = w_.fail_remap = w_.fail_reserve = w_.fail_map_fixed = 0;
    heap_->span_alloc().fail_next = 0;
    for (Live &l : live_)
      if (l.s) FreeSlot(l);
    CheckAll();
    heap_->ReleaseAll();
    CheckAll();
    PageHeapStats st = heap_->Stats();
    CHECK(st.free_bytes == 0, st.free_bytes, 0);
    CHECK(st.released_bytes == uint64_t(w_.mapped_pages) << kPageShift, st.released_bytes, w_.mapped_pages);
    w_.hook = nullptr;
    w_.heap_lock = nullptr;
  }

 private:
  void ReadHeader() {
    uint8_t a = in_.u8(), b = in_.u8(), c = in_.u8();
    static constexpr uint64_t kDelay[] = {0, 1, 10, 1000};
    w_.options.release_delay_ms = kDelay[a & 3];
    w_.options.hugepages = a & 4;
    w_.options.free_cap_bytes = uint64_t(b & 15) << 22;                     // 0 .. 60 MiB
    w_.options.retain_bytes = uint64_t(b >> 4) << 21;                       // 0 .. 30 MiB
    w_.options.memory_limit_bytes = c < 128 ? 0 : uint64_t(c & 127) << 23;  // 0 .. 1 GiB
    w_.clear_released_interior = a & 8;
  }

  // Calls refused so far by the fake OS, page map and span allocator.
  uint64_t Refusals() { return w_.refusals + heap_->span_alloc().refusals; }

  // A slot, or nullptr when the operation this one runs inside owns it.
  Live *Slot() {
    Live *l = &live_[in_.u8() % kSlots];
    return std::find(busy_.begin(), busy_.end(), l) != busy_.end() ? nullptr : l;
  }
  Live *LiveSlot() {
    Live *l = Slot();
    return l && l->s ? l : nullptr;
  }

  void Step() {
    uint8_t op = in_.u8();
    switch (op % 20) {
      case 0:
      case 1:
      case 2:
        AllocLarge();
        break;
      case 3:
      case 4:
        AllocSmall();
        break;
      case 5:
      case 6:
        if (Live *l = LiveSlot()) FreeSlot(*l);
        break;
      case 7:
        FreeSlots();
        break;
      case 8:
        if (Live *l = LiveSlot()) Realloc(*l);
        break;
      case 9:
        if (depth_ == 0) {  // (inside a release, ReleaseAll would wait for it)
          Trace("ReleaseAll");
          uint64_t before = Refusals();
          heap_->ReleaseAll();
          if (Refusals() == before) CHECK(heap_->Stats().free_bytes == 0, heap_->Stats().free_bytes, 0);
        }
        break;
      case 10:
        Trace("MaybeRelease");
        heap_->MaybeRelease();
        break;
      case 11: {
        Trace("ReleaseDue");
        size_t released = 0;
        uint64_t before = Refusals();
        uint64_t due = heap_->ReleaseDue(&released);
        // Nothing left due, unless the OS refused a release (the round ends
        // there; the rest waits for the next one).
        if (Refusals() == before) CHECK(due == FakePageHeap::kNever || due >= w_.now, due, w_.now);
        break;
      }
      case 12: {
        uint16_t ms = in_.u16();
        w_.now += ms & 0x8000 ? ms & 0x7fff : ms % 64;
        break;
      }
      case 13: {
        uint8_t which = in_.u8(), c = in_.u8();
        uint64_t count = c >= 250 ? 1000 : 1 + c % 3;  // a few calls, or for good
        switch (which % 7) {
          case 0:
            w_.fail_map += count;
            break;
          case 1:
            w_.fail_ensure += count;
            break;
          case 2:
            w_.fail_release += count;
            break;
          case 3:
            w_.fail_remap += count;
            break;
          case 4:
            w_.fail_reserve += count;
            break;
          case 5:
            w_.fail_map_fixed += count;
            break;
          default:
            heap_->span_alloc().fail_next += count;
            break;
        }
        break;
      }
      case 14:
        w_.gap_pages = in_.u8() * 3;
        break;
      case 15:
        w_.options.retain_bytes = uint64_t(in_.u8()) << 18;
        break;  // mallopt
      case 16:
        w_.on_scavenger_thread = !w_.on_scavenger_thread;
        break;
      case 17:
        w_.clear_released_interior = !w_.clear_released_interior;
        break;
      case 18:
        if (depth_ == 0) {  // another thread runs the next operations inside that call
          nest_at_ = kHookNames[in_.u8() % (sizeof(kHookNames) / sizeof(kHookNames[0]))];
          nest_ops_ = 1 + in_.u8() % 4;
        }
        break;
      default: {
        Trace("Validate");
        CHECK(heap_->Validate() == nullptr, 0, 0);
        break;
      }
    }
  }

  void Hook(const char *what) {
    if (strcmp(what, "OsRelease") == 0) {  // never a page in use
      PageId first = w_.last_release, end = first + w_.last_release_pages;
      for (Live &l : live_)
        if (l.s && l.start < end && first < l.start + l.n) Fail("release of a page in use", first, l.start);
    }
    if (depth_ > 0 || nest_ops_ == 0 || strcmp(what, nest_at_) != 0) return;
    int n = nest_ops_;
    nest_ops_ = 0;
    nested_++;
    depth_++;
    Trace("  (another thread, inside %s)", what);
    for (int i = 0; i < n && !in_.done(); i++) Step();
    depth_--;
  }

  // Marks a slot as owned by the operation in progress until destroyed.
  struct Busy {
    Busy(Harness *h, Live *l) : h(h) { h->busy_.push_back(l); }
    ~Busy() { h->busy_.pop_back(); }
    Harness *h;
  };

  // A free slot for a new span (a live one is freed first), or nullptr. The
  // caller marks it busy before freeing: a free may run nested operations.
  Live *Target() { return Slot(); }

  void AllocLarge() {
    Length n = in_.pages(), align = in_.align();
    Live *l = Target();
    if (l == nullptr) return;
    Busy busy(this, l);  // the nested operations must leave this slot alone
    if (l->s) FreeSlot(*l);
    Trace("AllocLarge(%lu, %lu)", n, align);
    uint64_t before = Refusals();
    bool zeroed = false;
    Span *s = heap_->AllocLarge(n, align, &zeroed);
    if (s == nullptr) {
      CHECK(Refusals() > before, n, align);  // fails only when the OS refused something
      return;
    }
    CHECK(s->npages == n && s->start % align == 0, s->npages, s->start);
    CHECK(s->state == SpanState::kLarge, int(s->state), 0);
    if (zeroed)
      for (PageId p = s->start; p < s->start + n; p++) CHECK(!(w_.State(p) & FakeWorld::kDirty), p, s->start);
    Adopt(l, s, 0);
  }

  void AllocSmall() {
    Length n = 1 + in_.u8() % 16;
    uint32_t cl = 1 + in_.u8() % (kNumClasses - 1);
    Live *l = Target();
    if (l == nullptr) return;
    Busy busy(this, l);
    if (l->s) FreeSlot(*l);
    Trace("AllocSmall(%lu, %u)", n, cl);
    uint64_t before = Refusals();
    Span *s = heap_->AllocSmall(n, cl);
    if (s == nullptr) {
      CHECK(Refusals() > before, n, cl);
      return;
    }
    CHECK(s->npages == n && s->state == SpanState::kSmall && s->size_class == cl, s->npages, s->size_class);
    Adopt(l, s, cl);
  }

  void Adopt(Live *l, Span *s, uint32_t cl) {
    for (Live &o : live_)
      if (o.s == s) Fail("span handed out twice", s->start);
    *l = Live{s, s->start, s->npages, cl};
    w_.SetDirty(s->start, s->npages);  // the user writes it
  }

  void FreeSlot(Live &l) {
    Trace("Free(%#lx, %lu)", l.start, l.n);
    Span *s = l.s;
    PageId start = l.start;
    Length n = l.n;
    l = Live{};
    uint64_t nested_before = nested_;
    heap_->Free(s);
    // A free span's pages have no class: free() of a stale pointer goes to
    // the slow path (unless "another thread" took them meanwhile).
    if (nested_ == nested_before)
      for (PageId p = start; p < start + n; p++) CHECK(w_.MappedClass(p) == 0, p, start);
  }

  // Free of up to four spans in one call (the central list's, as spans
  // empty), each checked as FreeSlot checks it.
  void FreeSlots() {
    Live *slots[4];
    int n = 0;
    for (int i = 1 + in_.u8() % 4; i > 0; i--)
      if (Live *l = LiveSlot(); l != nullptr && std::find(slots, slots + n, l) == slots + n) slots[n++] = l;
    Span *spans[4];
    Live freed[4];
    for (int i = 0; i < n; i++) {
      Trace("Free(%#lx, %lu)%s", slots[i]->start, slots[i]->n, i + 1 < n ? " +" : "");
      spans[i] = slots[i]->s;
      freed[i] = *slots[i];
      *slots[i] = Live{};
    }
    uint64_t nested_before = nested_;
    heap_->Free(spans, size_t(n));
    if (nested_ == nested_before)
      for (int i = 0; i < n; i++)
        for (PageId p = freed[i].start; p < freed[i].start + freed[i].n; p++)
          CHECK(w_.MappedClass(p) == 0, p, freed[i].start);
  }

  // realloc of a large block, as ReallocLarge does it.
  void Realloc(Live &l) {
    if (l.cl != 0) return;
    Length n = in_.pages();
    Trace("Realloc(%#lx, %lu -> %lu)", l.start, l.n, n);
    uint64_t before = Refusals();
    Busy busy(this, &l);
    bool in_place = heap_->ResizeInPlace(l.s, n);
    if (in_place) {
      CHECK(l.s->npages == n && l.s->start == l.start, l.s->npages, n);
      if (n > l.n) w_.SetDirty(l.start + l.n, n - l.n);
      l.n = n;
      return;
    }
    // Growing: copied into committed free pages when a span of them fits.
    if (n > l.n) {
      if (Span *t = heap_->AllocLargeCommitted(n)) {
        CHECK(t->npages == n && t->state == SpanState::kLarge, t->npages, n);
        // Committed: every page written before (none to fault in again).
        for (PageId p = t->start; p < t->start + n; p++) CHECK(w_.State(p) & FakeWorld::kDirty, p, t->start);
        for (Live &o : live_)
          if (o.s == t) Fail("committed span already handed out", t->start);
        Live old = l;
        l = Live{t, t->start, n, 0};
        FreeSlot(old);  // the copy done, the old block goes
        return;
      }
    }
    Span *moved = nullptr;
    if (l.s->bytes() >= kRemapBytes) moved = heap_->Remap(l.s, n);
    if (n < l.n) CHECK(Refusals() > before, n, l.n);  // shrinking fails only for want of metadata
    if (moved == nullptr) {
      CHECK(l.s->npages == l.n && l.s->start == l.start && l.s->state == SpanState::kLarge, l.s->npages, l.n);
      if (l.s->bytes() >= kRemapBytes) CHECK(Refusals() > before, n, l.n);
      return;
    }
    CHECK(moved->npages == n && moved->state == SpanState::kLarge, moved->npages, n);
    // The data moved with the pages: every page that held it is still written.
    for (PageId p = moved->start; p < moved->start + std::min(n, l.n); p++)
      CHECK(w_.State(p) & FakeWorld::kDirty, p, moved->start);
    Live m{moved, moved->start, n, 0};
    l = Live{};
    for (Live &o : live_)
      if (o.s == moved) Fail("remapped span already handed out", moved->start);
    l = m;
    w_.SetDirty(l.start, n);
  }

  void CheckAll() {
    if (const char *e = heap_->Validate()) Fail(e);
    PageHeapStats st = heap_->Stats();
    uint64_t large = 0, small = 0;
    std::vector<std::pair<PageId, Length>> ranges;
    for (Live &l : live_) {
      if (!l.s) continue;
      Span *s = l.s;
      CHECK(s->start == l.start && s->npages == l.n, s->start, l.start);
      CHECK(s->state == (l.cl ? SpanState::kSmall : SpanState::kLarge), int(s->state), l.cl);
      uint64_t entry = l.cl ? MakeClassEntry(s->start_addr(), l.cl) : 0;
      for (PageId p = s->start; p < s->start + s->npages; p++) {
        CHECK(w_.MappedSpan(p) == s, p, s->start);
        CHECK(w_.MappedClass(p) == entry, p, w_.MappedClass(p));
        CHECK((w_.State(p) & (FakeWorld::kMapped | FakeWorld::kDirty)) == (FakeWorld::kMapped | FakeWorld::kDirty), p,
              w_.State(p));
      }
      (l.cl ? small : large) += s->bytes();
      ranges.emplace_back(l.start, l.n);
    }
    std::sort(ranges.begin(), ranges.end());
    for (size_t i = 1; i < ranges.size(); i++)
      CHECK(ranges[i - 1].first + ranges[i - 1].second <= ranges[i].first, ranges[i - 1].first, ranges[i].first);
    CHECK(st.large_bytes == large, st.large_bytes, large);
    CHECK(st.small_span_bytes == small, st.small_span_bytes, small);
    uint64_t mapped = uint64_t(w_.mapped_pages) << kPageShift;
    CHECK(mapped == large + small + st.free_bytes + st.released_bytes, mapped,
          large + small + st.free_bytes + st.released_bytes);
    CHECK(uint64_t(w_.clean_pages) << kPageShift == st.released_bytes, w_.clean_pages, st.released_bytes);
  }

  void Trace(const char *fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (!g_trace) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%*s", depth_ * 2, "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
  }

  FakeWorld &w_;
  Input &in_;
  std::unique_ptr<FakePageHeap> heap_;
  Live live_[kSlots];
  std::vector<Live *> busy_;  // slots of the operations in progress
  int depth_ = 0;
  const char *nest_at_ = "";
  int nest_ops_ = 0;
  uint64_t nested_ = 0;  // times "another thread" ran
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static FakeWorld *world = new FakeWorld(size_t{4} << 30);
  world->Reset();
  Input in(data, size);
  Harness h(*world, in);
  h.Run();
  return 0;
}
