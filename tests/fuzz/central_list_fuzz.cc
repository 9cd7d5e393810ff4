// libFuzzer harness for one central list alone, on a fake page heap
// (tests/fakes/fake_central_env.h: spans of real memory that ASan watches,
// garbage in new spans and their bitmaps, failures on demand).
//
// The input is a header (the class, and sometimes a shape of our own: short
// spans, odd batches) and then a program of operations: RemoveRange of any n,
// with or without a run asked for (ObjectRun: an all-free span's first
// objects, unlinked),
// InsertRange of any n of the objects held (whole batches go to transfer
// slots; with or without the tail given), InsertRun of a run's end, taking a
// run's first objects one by one (as a thread cache does), ReleaseSlots, and
// page-heap refusals. Objects held by the "user" are written over and then
// poisoned (ASan); a run's objects are poisoned as they come: the list must
// not touch an object it handed out until it is given back.
//
// After every operation:
//   - Validate();
//   - every object handed out is an object start inside a span of the class,
//     below its object count, handed out once, its bit clear in its span;
//     a range has exactly the count returned less the run's, its tail is the
//     last object, and the count is n, or a whole batch, or less only if the
//     page heap refused; a run is consecutive objects of one span, at least
//     kMinRun, only when asked for;
//   - counts conserved: per span, popcount(free bits) = free count and no bit
//     past the object count; over all spans, objects out = held by the user
//     + in runs + in transfer slots; the list's statistics (spans, free in spans) equal
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
      for (const ObjectRun &r : runs_)
        if (s->contains(r.start)) Fail("span returned with a held run in it", uintptr_t(r.start), s->start_addr());
    };
    for (int step = 0; !in_.done() && step < 2000; step++) {
      Step();
      Check();
    }
    pages_.fail_next = 0;
    while (!runs_.empty()) GiveBackRun(runs_.size() - 1, 0);
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
        Remove(1 + in_.u8() % shape_.batch, op & 0x10);
        break;
      case 3:
        Remove(int(shape_.batch), op & 0x10);
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
        if ((op & 0x10) && !runs_.empty()) {
          uint8_t k = in_.u8();
          size_t r = k % runs_.size();
          uint32_t m = in_.u8() % runs_[r].count;
          if ((k & 0x80) || m == 0)
            GiveBackRun(r, m);
          else
            TakeFromRun(r, m);
          break;
        }
        if (g_trace) fprintf(stderr, "ReleaseSlots\n");
        list_->ReleaseSlots();
        break;
      default:
        pages_.fail_next += 1 + in_.u8() % 4;
        break;
    }
  }

  // Checks that p is an object of the class out of its span and never handed
  // out before, and records it as handed out.
  void CheckHandedOut(void *p, int i) {
    Span *s = pages_.SpanOf(p);
    CHECK(s != nullptr && s->size_class == cl_, uintptr_t(p), i);
    long idx = pages_.ObjectIndex(s, p);
    CHECK(idx >= 0, uintptr_t(p), s->start_addr());
    CHECK(!(s->free_bits[idx / 64] >> (idx % 64) & 1), uintptr_t(p), idx);  // out, so not free in its span
    CHECK(held_set_.insert(p).second, uintptr_t(p), i);                     // never handed out twice
  }

  void Remove(int n, bool with_run) {
    void *head = nullptr, *tail = nullptr;
    uint64_t before = pages_.refusals;
    ObjectRun run{reinterpret_cast<void *>(1), 12345};  // RemoveRange empties it
    int got = list_->RemoveRange(&head, &tail, n, with_run ? &run : nullptr);
    if (!with_run) run = ObjectRun{};
    if (g_trace) fprintf(stderr, "RemoveRange(%d%s) = %d (run %u)\n", n, with_run ? ", run" : "", got, run.count);
    CHECK(got >= 0 && got <= int(shape_.batch), got, n);
    if (!(got == n || (n > 1 && got == int(shape_.batch)))) CHECK(pages_.refusals > before && got < n, got, n);
    CHECK(run.count <= uint32_t(got), run.count, got);
    if (run.count != 0) {
      CHECK(run.count >= uint32_t(FakeCentralList::kMinRun), run.count, n);
      char *start = static_cast<char *>(run.start);
      Span *s = pages_.SpanOf(start);
      for (uint32_t i = 0; i < run.count; i++) {
        CheckHandedOut(start + size_t(i) * shape_.size, int(i));
        CHECK(pages_.SpanOf(start + size_t(i) * shape_.size) == s, i, run.count);
      }
      ASAN_POISON_MEMORY_REGION(start, size_t(run.count) * shape_.size);
      runs_.push_back(run);
    }
    got -= int(run.count);
    if (got == 0) {
      CHECK(head == nullptr && tail == nullptr, uintptr_t(head), uintptr_t(tail));
      return;
    }
    void *p = head;
    for (int i = 0; i < got; i++) {
      CHECK(p != nullptr, i, got);
      CheckHandedOut(p, i);
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

  // Gives run r back from its object m on (InsertRun); the rest stays held.
  void GiveBackRun(size_t r, uint32_t m) {
    ObjectRun &run = runs_[r];
    char *from = static_cast<char *>(run.start) + size_t(m) * shape_.size;
    uint32_t n = run.count - m;
    for (uint32_t i = 0; i < n; i++) held_set_.erase(from + size_t(i) * shape_.size);
    ASAN_UNPOISON_MEMORY_REGION(from, size_t(n) * shape_.size);
    if (g_trace) fprintf(stderr, "InsertRun(%u of %u)\n", n, run.count);
    run.count = m;
    if (m == 0) {  // before the call: on_free checks the runs still held
      runs_[r] = runs_.back();
      runs_.pop_back();
    }
    list_->InsertRun(ObjectRun{from, n});
  }

  // Takes the first m objects of run r one by one, as a thread cache would,
  // and uses them.
  void TakeFromRun(size_t r, uint32_t m) {
    ObjectRun &run = runs_[r];
    char *start = static_cast<char *>(run.start);
    if (g_trace) fprintf(stderr, "take %u of a run of %u\n", m, run.count);
    for (uint32_t i = 0; i < m; i++) {
      void *p = start + size_t(i) * shape_.size;
      ASAN_UNPOISON_MEMORY_REGION(p, shape_.size);
      memset(p, 0xee, shape_.size);
      ASAN_POISON_MEMORY_REGION(p, shape_.size);
      held_.push_back(p);
    }
    run.start = start + size_t(m) * shape_.size;
    run.count -= m;
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
    uint64_t in_runs = 0;
    for (const ObjectRun &r : runs_) in_runs += r.count;
    CHECK(held_set_.size() == held_.size() + in_runs, held_set_.size(), held_.size() + in_runs);
    for (void *p : held_set_) {
      Span *s = pages_.SpanOf(p);
      CHECK(s != nullptr, uintptr_t(p), 0);
      long idx = pages_.ObjectIndex(s, p);
      CHECK(idx >= 0 && !(s->free_bits[idx / 64] >> (idx % 64) & 1), uintptr_t(p), idx);
    }
    CHECK(out == held_set_.size() + st.slot_objects, out, held_set_.size() + st.slot_objects);
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
  std::vector<void *> held_;             // handed out, linked or taken from a run
  std::vector<ObjectRun> runs_;          // handed out as runs, untouched
  std::unordered_set<void *> held_set_;  // every object of held_ and runs_
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
