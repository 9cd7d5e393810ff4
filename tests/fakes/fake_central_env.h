// A fake page heap under one central list (the Env of CentralListT,
// central_list.h), for tests/central_list_test.cc and
// tests/fuzz/central_list_fuzz.cc.
//
// FakePages hands out spans of real memory from the C library's allocator
// (so ASan watches every byte the list touches), with Span objects of their
// own that are deleted when the span comes back (a use after that is
// reported). A new span comes with garbage in its memory and in its bitmap
// (a reused Span object holds a previous class's bits). The span lookup and
// the link check use the fake's own table of spans, never the page map.
// AllocSpan fails on demand (fail_next), counted in refusals. FreeSpan checks
// that the list returns only whole spans of its class, every object free;
// `on_free` lets a test check more.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <map>

#include "central_list.h"
#include "free_list.h"
#include "size_classes.h"
#include "span.h"

namespace spanalloc::fake {

class FakePages {
 public:
  FakePages() = default;
  FakePages(const FakePages &) = delete;
  FakePages &operator=(const FakePages &) = delete;
  ~FakePages() { Reset(); }

  // Frees every span still out (the list that held them is gone).
  void Reset() {
    for (auto &[addr, s] : spans_) {
      free(reinterpret_cast<void *>(addr));
      delete s;
    }
    spans_.clear();
    fail_next = refusals = allocated = freed = 0;
    on_free = nullptr;
  }

  // A shape of our own for class cl (tests: short spans, odd batches); the
  // size stays the class's, so reports name the right size.
  void SetShape(uint32_t cl, uint32_t pages, uint32_t batch) {
    ClassShape s = kClassShape[cl];
    s.pages = pages < PagesFor(s.size) ? uint32_t(PagesFor(s.size)) : pages;  // one object at least
    s.objects = uint32_t(s.pages * kPageSize / s.size);
    if (s.objects > kMaxObjectsPerSpan) s.objects = kMaxObjectsPerSpan;
    s.batch = batch;
    shape_ = s;
    custom_ = true;
  }
  void DefaultShape() { custom_ = false; }

  // ---- the Env's calls ----
  Span *AllocSpan(Length pages, uint32_t cl) {
    if (fail_next > 0) {
      fail_next--;
      refusals++;
      return nullptr;
    }
    if (pages != Shape(cl).pages) Fail("span of the wrong length asked for", pages);
    void *mem = aligned_alloc(kPageSize, pages * kPageSize);
    if (mem == nullptr) Fail("out of memory");
    memset(mem, int(0xa5 ^ allocated), pages * kPageSize);  // not zero: never assumed
    Span *s = new Span();
    s->start = PageOf(mem);
    s->npages = pages;
    s->state = SpanState::kSmall;
    s->size_class = uint8_t(cl);
    for (uint64_t &w : s->free_bits) w = 0x5555aaaa5555aaaaull * (allocated + 1);  // a previous class's bits
    s->free_count = 12345;
    spans_[reinterpret_cast<uintptr_t>(mem)] = s;
    allocated++;
    return s;
  }
  void FreeSpan(Span *s) {
    auto it = spans_.find(s->start_addr());
    if (it == spans_.end() || it->second != s) Fail("span not ours returned", s->start_addr());
    const ClassShape &shape = Shape(s->size_class);
    if (s->state != SpanState::kSmall) Fail("span returned in the wrong state", uint64_t(s->state));
    if (s->in_list) Fail("span returned while on a partial list", s->start_addr());
    if (s->free_count != shape.objects) Fail("span returned with objects out", s->free_count);
    for (uint32_t i = 0; i < kMaxObjectsPerSpan; i++)
      if (bool(s->free_bits[i / 64] >> (i % 64) & 1) != (i < shape.objects)) Fail("returned span's bitmap", i);
    if (on_free) on_free(s);
    free(reinterpret_cast<void *>(s->start_addr()));
    delete s;
    spans_.erase(it);
    freed++;
  }
  Span *SpanOf(const void *p) const {
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    auto it = spans_.upper_bound(a);
    if (it == spans_.begin()) return nullptr;
    --it;
    return it->second->contains(p) ? it->second : nullptr;
  }
  // As free_list.h's LinkIsValid, on our table (and stricter: an object
  // start below the span's object count).
  bool LinkIsValid(const void *link, uint32_t cl) const {
    if (link == nullptr) return true;
    if (!LinkIsPlausible(link)) return false;
    Span *s = SpanOf(link);
    if (s == nullptr || s->state != SpanState::kSmall || s->size_class != cl) return false;
    uintptr_t off = reinterpret_cast<uintptr_t>(link) - s->start_addr();
    return off % Shape(cl).size == 0 && off / Shape(cl).size < Shape(cl).objects;
  }
  const ClassShape &Shape(uint32_t cl) const { return custom_ ? shape_ : kClassShape[cl]; }

  // Index of object p in its span, or -1 if p is not an object start there.
  long ObjectIndex(const Span *s, const void *p) const {
    uintptr_t off = reinterpret_cast<uintptr_t>(p) - s->start_addr();
    uint32_t size = Shape(s->size_class).size;
    if (off % size != 0 || off / size >= Shape(s->size_class).objects) return -1;
    return long(off / size);
  }
  const std::map<uintptr_t, Span *> &spans() const { return spans_; }

  uint64_t fail_next = 0;
  uint64_t refusals = 0;
  uint64_t allocated = 0, freed = 0;
  std::function<void(Span *)> on_free;

 private:
  [[noreturn]] static void Fail(const char *what, uint64_t a = 0) {
    fprintf(stderr, "fake page heap: %s (%#llx)\n", what, (unsigned long long)a);
    abort();
  }
  std::map<uintptr_t, Span *> spans_;  // by start address
  ClassShape shape_{};
  bool custom_ = false;
};

struct FakeCentralEnv {
  FakePages *p = nullptr;
  Span *AllocSpan(Length pages, uint32_t cl) { return p->AllocSpan(pages, cl); }
  void FreeSpan(Span *s) { p->FreeSpan(s); }
  void FreeSpans(Span *const *spans, int n) {
    for (int i = 0; i < n; i++) p->FreeSpan(spans[i]);
  }
  Span *SpanOf(const void *ptr) const { return p->SpanOf(ptr); }
  bool LinkIsValid(const void *link, uint32_t cl) const { return p->LinkIsValid(link, cl); }
  const ClassShape &Shape(uint32_t cl) const { return p->Shape(cl); }
  uint32_t ListClass(const void *) const { return 0; }  // the tests' lists are built with their class
};

using FakeCentralList = CentralListT<FakeCentralEnv>;

}  // namespace spanalloc::fake
