// libFuzzer harness for one central list alone, on a fake page heap
// (tests/fakes/fake_central_env.h: spans of real memory that ASan watches,
// garbage in new spans and their bitmaps, failures on demand).
//
// The input is a header (the class, and sometimes a shape of our own: short
// spans, odd batches) and then a program of operations: RemoveRange of any n,
// InsertRange of any n of the objects held (whole batches go to transfer
// slots; with or without the tail given), ReleaseSlots, and page-heap
// refusals. Objects held by the "user" are written over and then poisoned
// (ASan): the list must not touch an object it handed out until it is given
// back.
//
// After every operation:
//   - Validate();
//   - every object handed out is an object start inside a span of the class,
//     below its object count, handed out once, its bit clear in its span;
//     a range has exactly the count returned, its tail is the last object,
//     and the count is n, or a whole batch, or less only if the page heap
//     refused;
//   - counts conserved: per span, popcount(free bits) = free count and no bit
//     past the object count; over all spans, objects out = held by the user
//     + in transfer slots; the list's statistics (spans, free in spans) equal
//     the fake's;
//   - a span goes back only when all its objects are free (FakePages checks),
//     with no object held by the user inside it.
// At the end every object goes back and the slots are emptied: at most one
// span (kept against thrashing) may stay, all free.
#include <sanitizer/asan_interface.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memory>
#include <unordered_set>
#include <vector>

#include "../fakes/fake_central_env.h"
#include "central_list_impl.h"
#include "fuzz_input.h"

namespace {

using namespace spanalloc;
using fake::FakeCentralEnv;
using fake::FakeCentralList;
using fake::FakePages;

bool g_trace = getenv("CENTRAL_LIST_FUZZ_TRACE") != nullptr;

using fuzz::Fail;
#define CHECK FUZZ_CHECK

using Input = fuzz::ByteReader;

uint32_t PopCount(uint64_t w) { return uint32_t(__builtin_popcountll(w)); }

class Harness {
 public:
  Harness(FakePages &pages, Input &in) : pages_(pages), in_(in) {}

  void Run() {
    uint8_t a = in_.u8(), b = in_.u8(), c = in_.u8();
    cl_ = 1 + a % (kNumClasses - 1);
    if (b & 1) {  // a shape of our own: 1..4 pages, batch 1..64
      pages_.SetShape(cl_, 1 + (b >> 1) % 4, 1 + c % 64);
    } else {
      pages_.DefaultShape();
    }
    shape_ = pages_.Shape(cl_);
    if (g_trace)
      fprintf(stderr, "class %u: size %u, %u pages, %u objects, batch %u\n", cl_, shape_.size, shape_.pages,
              shape_.objects, shape_.batch);
    list_ = std::make_unique<FakeCentralList>(cl_, FakeCentralEnv{&pages_});
    pages_.on_free = [this](Span *s) {
      for (void *p : held_)
        if (s->contains(p)) Fail("span returned with a held object in it", uintptr_t(p), s->start_addr());
    };
    for (int step = 0; !in_.done() && step < 2000; step++) {
      Step();
      Check();
    }
    pages_.fail_next = 0;
    while (!held_.empty()) Insert(int(held_.size() < shape_.batch ? held_.size() : shape_.batch), held_.size() & 1);
    list_->ReleaseSlots();
    Check();
    CHECK(pages_.spans().size() <= 1, pages_.spans().size(), 0);
    for (auto &[addr, s] : pages_.spans()) CHECK(s->free_count == shape_.objects, s->free_count, shape_.objects);
    pages_.on_free = nullptr;
  }

 private:
  void Step() {
    uint8_t op = in_.u8();
    switch (op % 8) {
      case 0:
      case 1:
      case 2:
        Remove(1 + in_.u8() % shape_.batch);
        break;
      case 3:
        Remove(int(shape_.batch));
        break;
      case 4:
      case 5:
        if (!held_.empty()) {
          uint8_t k = in_.u8();
          size_t n = k & 1 && held_.size() >= shape_.batch ? shape_.batch : 1 + k / 2 % held_.size();
          if (n > shape_.batch) n = shape_.batch;
          Insert(int(n), k & 2);
        }
        break;
      case 6:
        if (g_trace) fprintf(stderr, "ReleaseSlots\n");
        list_->ReleaseSlots();
        break;
      default:
        pages_.fail_next += 1 + in_.u8() % 4;
        break;
    }
  }

  void Remove(int n) {
    void *head = nullptr, *tail = nullptr;
    uint64_t before = pages_.refusals;
    int got = list_->RemoveRange(&head, &tail, n);
    if (g_trace) fprintf(stderr, "RemoveRange(%d) = %d\n", n, got);
    CHECK(got >= 0 && got <= int(shape_.batch), got, n);
    if (!(got == n || (n > 1 && got == int(shape_.batch)))) CHECK(pages_.refusals > before && got < n, got, n);
    if (got == 0) return;
    void *p = head;
    for (int i = 0; i < got; i++) {
      CHECK(p != nullptr, i, got);
      Span *s = pages_.SpanOf(p);
      CHECK(s != nullptr && s->size_class == cl_, uintptr_t(p), i);
      long idx = pages_.ObjectIndex(s, p);
      CHECK(idx >= 0, uintptr_t(p), s->start_addr());
      CHECK(!(s->free_bits[idx / 64] >> (idx % 64) & 1), uintptr_t(p), idx);  // out, so not free in its span
      CHECK(held_set_.insert(p).second, uintptr_t(p), i);                     // never handed out twice
      held_.push_back(p);
      void *next = LinkOf(p);
      if (i + 1 == got) {
        CHECK(p == tail, uintptr_t(p), uintptr_t(tail));
        CHECK(next == nullptr, uintptr_t(next), 0);
      }
      p = next;
    }
    // The user writes the objects, then they are out of the list's reach.
    for (size_t i = held_.size() - size_t(got); i < held_.size(); i++) {
      memset(held_[i], 0xee, shape_.size);
      ASAN_POISON_MEMORY_REGION(held_[i], shape_.size);
    }
  }

  // Gives back n held objects, picked by the input, as one linked range.
  void Insert(int n, bool with_tail) {
    std::vector<void *> objs;
    for (int i = 0; i < n; i++) {
      size_t j = (size_t(in_.u8()) * 131 + size_t(i)) % held_.size();
      objs.push_back(held_[j]);
      held_[j] = held_.back();
      held_.pop_back();
    }
    for (void *p : objs) {
      held_set_.erase(p);
      ASAN_UNPOISON_MEMORY_REGION(p, shape_.size);
    }
    for (size_t i = 0; i + 1 < objs.size(); i++) SetLink(objs[i], objs[i + 1]);
    SetLink(objs.back(), nullptr);
    if (g_trace) fprintf(stderr, "InsertRange(%d%s)\n", n, with_tail ? ", tail" : "");
    if (with_tail)
      list_->InsertRange(objs.front(), objs.back(), n);
    else
      list_->InsertRange(objs.front(), n);
  }

  void Check() {
    if (const char *e = list_->Validate()) Fail(e);
    CentralStats st = list_->Stats();
    uint64_t out = 0, span_free = 0;
    for (auto &[addr, s] : pages_.spans()) {
      uint32_t pop = 0;
      for (uint32_t w = 0; w < kMaxObjectsPerSpan / 64; w++) {
        uint64_t bits = s->free_bits[w];
        uint64_t past = w * 64 >= shape_.objects        ? ~uint64_t{0}
                        : shape_.objects - w * 64 >= 64 ? 0
                                                        : ~uint64_t{0} << (shape_.objects - w * 64);
        CHECK((bits & past) == 0, w, bits);  // no free bit past the object count
        pop += PopCount(bits);
      }
      CHECK(pop == s->free_count, pop, s->free_count);
      CHECK(s->in_list == (s->free_count > 0), s->in_list, s->free_count);
      out += shape_.objects - s->free_count;
      span_free += s->free_count;
    }
    for (void *p : held_) {
      Span *s = pages_.SpanOf(p);
      CHECK(s != nullptr, uintptr_t(p), 0);
      long idx = pages_.ObjectIndex(s, p);
      CHECK(idx >= 0 && !(s->free_bits[idx / 64] >> (idx % 64) & 1), uintptr_t(p), idx);
    }
    CHECK(out == held_.size() + st.slot_objects, out, held_.size() + st.slot_objects);
    if (pages_.allocated > 0 || st.spans > 0) {
      CHECK(st.spans == pages_.spans().size(), st.spans, pages_.spans().size());
      CHECK(st.span_free == span_free, st.span_free, span_free);
    }
    CHECK(pages_.allocated - pages_.freed == pages_.spans().size(), pages_.allocated, pages_.freed);
  }

  FakePages &pages_;
  Input &in_;
  uint32_t cl_ = 0;
  ClassShape shape_{};
  std::unique_ptr<FakeCentralList> list_;
  std::vector<void *> held_;
  std::unordered_set<void *> held_set_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static FakePages *pages = new FakePages();
  pages->Reset();
  InitLinkSecret();
  Input in(data, size);
  Harness h(*pages, in);
  h.Run();
  pages->Reset();
  return 0;
}
