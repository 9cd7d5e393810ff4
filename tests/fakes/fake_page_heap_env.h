// A fake of everything the page heap uses (the Env of PageHeapT, page_heap.h),
// for tests/page_heap_test.cc and tests/fuzz/page_heap_fuzz.cc.
//
// FakeWorld plays the kernel, the page map, the clock, the options and the
// background thread for one PageHeapT<FakePageHeapEnv>:
//   - Address space is one PROT_NONE reservation (the arena): the page heap
//     gets real addresses, and any access to span memory faults at once (the
//     page heap must never touch it). Mappings are bump-allocated in the
//     arena, with an optional gap before each, so growth chunks may or may
//     not be adjacent.
//   - Per arena page the world keeps the OS state (mapped, reserved, dirty:
//     written since mapped or released) and the page map's two entries.
//   - Every call that can fail fails on demand (fail_* counters): map,
//     page-map leaf, span metadata, release, remaps; `refusals` counts the
//     failures, so a caller can tell "failed without reason" from "the OS said
//     no".
//   - Calls the page heap makes without its lock (the OS calls and the
//     background-thread hooks) check that the lock is free, and then call
//     `hook`, where a test may run other page-heap operations: another thread
//     at that very moment.
//   - The page map's leaves are tracked: a write to a page whose leaf was
//     never ensured is reported.
// Nothing here is thread-safe; one test thread drives the world.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <vector>

#include "options.h"
#include "os_memory.h"
#include "page_heap.h"
#include "page_map.h"

namespace spanalloc::fake {

[[noreturn]] inline void FakeFail(const char *what, uintptr_t a = 0, uintptr_t b = 0) {
  fprintf(stderr, "fake page-heap env: %s (%#lx, %#lx)\n", what, (unsigned long)a, (unsigned long)b);
  abort();
}

// Span objects for the page heap. Like FixedAlloc, memory of a deleted Span
// stays readable (stale page-map entries may point at it) and is reused;
// like FixedAlloc's free list, a delete overwrites its first word.
class FakeSpanAlloc {
 public:
  Span *New() {
    if (fail_next > 0) {
      fail_next--;
      refusals++;
      return nullptr;
    }
    Span *s;
    if (!free_.empty()) {
      s = free_.back();
      free_.pop_back();
    } else {
      s = &pool_.emplace_back();
    }
    new (s) Span();
    in_use_++;
    return s;
  }
  void Delete(Span *s) {
    s->start = 0x5ca1ab1e0000;  // as a free-list link would
    free_.push_back(s);
    in_use_--;
  }
  void Delete(Span *const *spans, size_t n) {
    for (size_t i = 0; i < n; i++) Delete(spans[i]);
  }
  size_t in_use() const { return in_use_; }

  uint64_t fail_next = 0;  // the next this many New() calls fail
  uint64_t refusals = 0;

 private:
  std::deque<Span> pool_;
  std::vector<Span *> free_;
  size_t in_use_ = 0;
};

class FakeWorld {
 public:
  enum : uint8_t { kMapped = 1, kDirty = 2, kReserved = 4 };

  // arena_bytes of address space, reserved once per world.
  explicit FakeWorld(size_t arena_bytes = size_t{8} << 30) {
    size_t extra = kHugePageSize;
    void *p = mmap(nullptr, arena_bytes + extra, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) FakeFail("cannot reserve the arena", arena_bytes);
    raw_ = p;
    raw_bytes_ = arena_bytes + extra;
    base_ = (reinterpret_cast<uintptr_t>(p) + kHugePageSize - 1) & ~(kHugePageSize - 1);
    base_page_ = base_ >> kPageShift;
    pages_ = arena_bytes >> kPageShift;
    state_.assign(pages_, 0);
    span_.assign(pages_, nullptr);
    class_.assign(pages_, 0);
    Reset();
  }
  ~FakeWorld() { munmap(raw_, raw_bytes_); }
  FakeWorld(const FakeWorld &) = delete;
  FakeWorld &operator=(const FakeWorld &) = delete;

  // Back to an empty address space and default settings (a new heap).
  void Reset() {
    std::fill(state_.begin(), state_.begin() + long(top_), 0);
    std::fill(span_.begin(), span_.begin() + long(top_), nullptr);
    std::fill(class_.begin(), class_.begin() + long(top_), 0);
    top_ = 0;
    leaves_.clear();
    memset(&options, 0, sizeof options);
    options.release_delay_ms = 1000;
    options.free_cap_bytes = uint64_t{64} << 20;
    options.retain_bytes = 0;
    now = 1000000;
    gap_pages = 0;
    fail_map = fail_ensure = fail_release = fail_remap = fail_reserve = fail_map_fixed = 0;
    refusals = 0;
    on_scavenger_thread = false;
    notified = 0;
    mapped_pages = clean_pages = 0;
    last_release = last_release_pages = 0;
    clear_released_interior = true;
    hook = nullptr;
    heap_lock = nullptr;
  }

  // ---- queries for tests ----
  bool InArena(PageId page, Length n = 1) const {
    return page >= base_page_ && page + n <= base_page_ + pages_ && page + n >= page;
  }
  uint8_t State(PageId page) const { return state_[Index(page)]; }
  // The user wrote these pages.
  void SetDirty(PageId first, Length n) {
    for (PageId p = first; p < first + n; p++) Set(p, State(p) | kDirty);
  }
  Span *MappedSpan(PageId page) const { return InArena(page) ? span_[page - base_page_] : nullptr; }
  uint64_t MappedClass(PageId page) const { return InArena(page) ? class_[page - base_page_] : 0; }
  // Arena pages ever handed out: [base_page(), base_page() + top()).
  PageId base_page() const { return base_page_; }
  Length top() const { return top_; }

  // ---- settings a test may change at any time ----
  Options options{};
  uint64_t now = 0;
  Length gap_pages = 0;       // left unused before the next mapping
  uint64_t fail_map = 0;      // the next this many OsMap calls fail
  uint64_t fail_ensure = 0;   // ... PageMapEnsure calls
  uint64_t fail_release = 0;  // ... OsRelease calls
  uint64_t fail_remap = 0;    // ... OsRemapInPlace / OsRemapMoveTo calls
  uint64_t fail_reserve = 0;  // ... OsReserve calls
  uint64_t fail_map_fixed = 0;
  bool on_scavenger_thread = false;
  // PageMapReleaseInterior: clear the interior entries (as when the map's OS
  // pages are dropped) or leave them stale (when they share an OS page).
  bool clear_released_interior = true;
  // Called from every call the page heap makes without its lock, after the
  // call's effect (what = its name).
  std::function<void(const char *what)> hook;
  const Mutex *heap_lock = nullptr;  // checked free in those calls, if set

  // ---- what happened ----
  uint64_t refusals = 0;  // calls that failed (on demand or out of arena)
  uint64_t notified = 0;
  uint64_t last_excess = 0;
  Length mapped_pages = 0;  // pages mapped now (not reserved)
  Length clean_pages = 0;   // mapped pages not written since mapped or released
  PageId last_release = 0;  // the range of the last OsRelease call
  Length last_release_pages = 0;

  // ---- the Env's calls ----
  Span *SpanOfPage(PageId page) const { return MappedSpan(page); }
  bool PageMapEnsure(PageId first, Length n) {
    if (Refuse(fail_ensure)) return false;
    if (!InArena(first, n)) {
      refusals++;  // past the address space
      return false;
    }
    for (PageId leaf = first >> kLeafBits; leaf <= (first + n - 1) >> kLeafBits; leaf++) AddLeaf(leaf);
    return true;
  }
  void PageMapSetSpan(PageId page, Span *s) {
    CheckLeaf(page, 1);
    span_[page - base_page_] = s;
  }
  void PageMapSetRange(PageId first, Length n, Span *s, uint64_t entry, bool set_class) {
    CheckLeaf(first, n);
    for (PageId p = first; p < first + n; p++) {
      span_[p - base_page_] = s;
      if (set_class) class_[p - base_page_] = entry;
    }
  }
  void PageMapReleaseInterior(PageId first, Length n) {
    CheckLeaf(first, n);
    if (!clear_released_interior) return;
    for (PageId p = first + 1; p + 1 < first + n; p++) {
      span_[p - base_page_] = nullptr;
      class_[p - base_page_] = 0;
    }
  }

  void *OsMap(size_t bytes, size_t align) {
    Unlocked("OsMap");
    void *p = Take(bytes, align, kMapped, fail_map);
    After("OsMap");
    return p;
  }
  bool OsAdviseHugePages(void *p, size_t bytes) {
    Unlocked("OsAdviseHugePages");
    if ((reinterpret_cast<uintptr_t>(p) | bytes) & (kHugePageSize - 1)) FakeFail("huge-page advice not 2 MiB-aligned");
    CheckAll(p, bytes, kMapped, "huge-page advice on unmapped memory");
    After("OsAdviseHugePages");
    return true;
  }
  bool OsRelease(void *p, size_t bytes) {
    Unlocked("OsRelease");
    CheckAll(p, bytes, kMapped, "release of unmapped memory");
    bool ok = !Refuse(fail_release);
    last_release = PageOf(p);
    last_release_pages = bytes >> kPageShift;
    if (ok)
      for (PageId q = PageOf(p); q < PageOf(p) + (bytes >> kPageShift); q++) Set(q, kMapped);
    After("OsRelease");
    return ok;
  }
  void OsUnmap(void *p, size_t bytes) {
    CheckAll(p, bytes, kMapped, "unmap of unmapped memory");
    SetRange(PageOf(p), bytes >> kPageShift, 0);
  }
  bool OsRemapInPlace(void *p, size_t old_bytes, size_t new_bytes) {
    Unlocked("OsRemapInPlace");
    CheckAll(p, old_bytes, kMapped, "remap of unmapped memory");
    bool ok = false;
    PageId from = PageOf(p) + (old_bytes >> kPageShift);
    Length add = (new_bytes - old_bytes) >> kPageShift;
    if (new_bytes < old_bytes) {  // the kernel shrinks a mapping where it stands
      ok = !Refuse(fail_remap);
      if (ok) SetRange(PageOf(p) + (new_bytes >> kPageShift), (old_bytes - new_bytes) >> kPageShift, 0);
    } else if (!Refuse(fail_remap) && InArena(from, add)) {
      ok = true;  // the kernel grows a mapping only into free address space
      for (PageId q = from; q < from + add && ok; q++) ok = state_[Index(q)] == 0;
      if (ok) {
        if (from + add - base_page_ > top_) top_ = from + add - base_page_;
        SetRange(from, add, kMapped);
      }
    }
    After("OsRemapInPlace");
    return ok;
  }
  void *OsReserve(size_t bytes, size_t align) {
    Unlocked("OsReserve");
    void *p = Take(bytes, align, kReserved, fail_reserve);
    After("OsReserve");
    return p;
  }
  bool OsRemapMoveTo(void *p, size_t old_bytes, size_t new_bytes, void *target) {
    Unlocked("OsRemapMoveTo");
    CheckAll(p, old_bytes, kMapped, "move of unmapped memory");
    CheckAll(target, new_bytes, kReserved, "move to a range not reserved");
    bool ok = !Refuse(fail_remap);
    if (ok) {
      PageId src = PageOf(p), dst = PageOf(target);
      Length old_n = old_bytes >> kPageShift, new_n = new_bytes >> kPageShift;
      for (Length i = 0; i < new_n; i++) Set(dst + i, i < old_n ? State(src + i) : uint8_t(kMapped));
      SetRange(src, old_n, 0);  // a hole
    }
    After("OsRemapMoveTo");
    return ok;
  }
  void OsUnreserve(void *target, size_t bytes) {
    Unlocked("OsUnreserve");
    CheckAll(target, bytes, kReserved, "unreserve of a range not reserved");
    SetRange(PageOf(target), bytes >> kPageShift, 0);
    After("OsUnreserve");
  }
  bool OsMapFixed(void *p, size_t bytes) {
    Unlocked("OsMapFixed");
    PageId first = PageOf(p);
    Length n = bytes >> kPageShift;
    if (!InArena(first, n)) FakeFail("fixed mapping outside the arena", first, n);
    // MAP_FIXED replaces whatever is there: refuse to clobber (a test would
    // not see it otherwise).
    for (PageId q = first; q < first + n; q++)
      if (state_[Index(q)] != 0) FakeFail("MAP_FIXED over a live mapping", first, q);
    bool ok = !Refuse(fail_map_fixed);
    if (ok) SetRange(first, n, kMapped);
    After("OsMapFixed");
    return ok;
  }

  uint64_t NowMillis() const { return now; }
  uint64_t RetainBytes() const { return options.retain_bytes; }
  bool OnScavengerThread() const { return on_scavenger_thread; }
  void NotifyScavenger(uint64_t excess) {
    Unlocked("NotifyScavenger");
    if (excess == 0) FakeFail("scavenger notified of nothing");
    notified++;
    last_excess = excess;
    After("NotifyScavenger");
  }

 private:
  size_t Index(PageId page) const {
    if (!InArena(page)) FakeFail("page outside the arena", page << kPageShift);
    return page - base_page_;
  }
  bool Refuse(uint64_t &fail) {
    if (fail == 0) return false;
    fail--;
    refusals++;
    return true;
  }
  void Unlocked(const char *what) {
    if (heap_lock != nullptr && heap_lock->IsHeld()) {
      fprintf(stderr, "%s: ", what);
      FakeFail("called with the page-heap lock held");
    }
  }
  void After(const char *what) {
    if (hook) hook(what);
  }
  void AddLeaf(PageId leaf) {
    for (PageId l : leaves_)
      if (l == leaf) return;
    leaves_.push_back(leaf);
  }
  void CheckLeaf(PageId first, Length n) {
    if (!InArena(first, n)) FakeFail("page-map write outside the arena", first << kPageShift, n);
    for (PageId leaf = first >> kLeafBits; leaf <= (first + n - 1) >> kLeafBits; leaf++) {
      bool found = false;
      for (PageId l : leaves_) found |= l == leaf;
      if (!found) FakeFail("page-map write to a leaf never ensured", first << kPageShift, n);
    }
  }
  void CheckAll(const void *p, size_t bytes, uint8_t bit, const char *what) {
    PageId first = PageOf(p);
    if ((reinterpret_cast<uintptr_t>(p) | bytes) & (kPageSize - 1)) FakeFail(what, uintptr_t(p), bytes);
    if (bytes == 0 || !InArena(first, bytes >> kPageShift)) FakeFail(what, uintptr_t(p), bytes);
    for (PageId q = first; q < first + (bytes >> kPageShift); q++)
      if (!(state_[Index(q)] & bit)) FakeFail(what, uintptr_t(p), bytes);
  }
  void SetRange(PageId first, Length n, uint8_t st) {
    for (PageId q = first; q < first + n; q++) Set(q, st);
  }
  // Every change of a page's state, so that the counts stay exact.
  void Set(PageId page, uint8_t st) {
    uint8_t &s = state_[Index(page)];
    if (s & kMapped) mapped_pages--;
    if ((s & (kMapped | kDirty)) == kMapped) clean_pages--;
    s = st;
    if (st & kMapped) mapped_pages++;
    if ((st & (kMapped | kDirty)) == kMapped) clean_pages++;
  }
  // Fresh address space: bytes aligned to align, after gap_pages unused.
  void *Take(size_t bytes, size_t align, uint8_t st, uint64_t &fail) {
    if (Refuse(fail)) return nullptr;
    Length align_pages = align < kPageSize ? 1 : align >> kPageShift;
    Length n = (bytes + kPageSize - 1) >> kPageShift;
    PageId start = base_page_ + top_ + gap_pages;
    start = (start + align_pages - 1) / align_pages * align_pages;
    if (n == 0 || !InArena(start, n)) {
      refusals++;  // out of address space
      return nullptr;
    }
    top_ = start + n - base_page_;
    SetRange(start, n, st);
    return PageAddr(start);
  }

  void *raw_ = nullptr;
  size_t raw_bytes_ = 0;
  uintptr_t base_ = 0;
  PageId base_page_ = 0;
  Length pages_ = 0;
  Length top_ = 0;  // pages [0, top_) of the arena were handed out
  std::vector<uint8_t> state_;
  std::vector<Span *> span_;
  std::vector<uint64_t> class_;
  std::vector<PageId> leaves_;
};

// The Env a PageHeapT<FakePageHeapEnv> calls: everything goes to the world.
struct FakePageHeapEnv {
  using SpanAlloc = FakeSpanAlloc;
  FakeWorld *w = nullptr;

  Span *SpanOfPage(PageId page) const { return w->SpanOfPage(page); }
  bool PageMapEnsure(PageId first, Length n) { return w->PageMapEnsure(first, n); }
  void PageMapSetSpan(PageId page, Span *s) { w->PageMapSetSpan(page, s); }
  void PageMapSetRange(PageId first, Length n, Span *s, uint64_t entry, bool set_class) {
    w->PageMapSetRange(first, n, s, entry, set_class);
  }
  void PageMapReleaseInterior(PageId first, Length n) { w->PageMapReleaseInterior(first, n); }
  void *OsMap(size_t bytes, size_t align) { return w->OsMap(bytes, align); }
  bool OsAdviseHugePages(void *p, size_t bytes) { return w->OsAdviseHugePages(p, bytes); }
  bool OsRelease(void *p, size_t bytes) { return w->OsRelease(p, bytes); }
  void OsUnmap(void *p, size_t bytes) { w->OsUnmap(p, bytes); }
  bool OsRemapInPlace(void *p, size_t old_bytes, size_t new_bytes) {
    return w->OsRemapInPlace(p, old_bytes, new_bytes);
  }
  void *OsReserve(size_t bytes, size_t align) { return w->OsReserve(bytes, align); }
  bool OsRemapMoveTo(void *p, size_t old_bytes, size_t new_bytes, void *target) {
    return w->OsRemapMoveTo(p, old_bytes, new_bytes, target);
  }
  void OsUnreserve(void *target, size_t bytes) { w->OsUnreserve(target, bytes); }
  bool OsMapFixed(void *p, size_t bytes) { return w->OsMapFixed(p, bytes); }
  uint64_t NowMillis() const { return w->NowMillis(); }
  const Options &options() const { return w->options; }
  uint64_t RetainBytes() const { return w->RetainBytes(); }
  bool OnScavengerThread() const { return w->OnScavengerThread(); }
  void NotifyScavenger(uint64_t excess) { w->NotifyScavenger(excess); }
};

using FakePageHeap = PageHeapT<FakePageHeapEnv>;

}  // namespace spanalloc::fake
