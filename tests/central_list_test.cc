// Central lists over the real page heap: batches through transfer slots,
// objects back into spans, empty spans back to the page heap, double frees.
// The last tests run a list alone on a fake page heap (FakeListTest).
#include "central_list.h"

#include <gtest/gtest.h>

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "allocator.h"
#include "central_list_impl.h"
#include "fakes/fake_central_env.h"
#include "free_list.h"
#include "page_heap.h"
#include "page_map.h"

namespace spanalloc {
namespace {

class CentralListTest : public ::testing::Test {
 protected:
  void SetUp() override { EnsureInitialized(); }
};

std::vector<void *> Collect(void *head, int n) {
  std::vector<void *> v;
  for (void *p = head; p != nullptr && int(v.size()) < n + 1; p = LinkOf(p)) v.push_back(p);
  return v;
}

void *Link(const std::vector<void *> &objs, size_t from, size_t n) {
  for (size_t i = from; i + 1 < from + n; i++) SetLink(objs[i], objs[i + 1]);
  SetLink(objs[from + n - 1], nullptr);
  return objs[from];
}

TEST_F(CentralListTest, BatchesHoldDistinctObjectsOfTheClass) {
  for (uint32_t cl : {1u, 4u, 20u, 40u, kNumClasses - 1}) {
    CentralList &c = g_central[cl];
    int batch = int(kClassShape[cl].batch);
    void *head, *tail;
    ASSERT_EQ(c.RemoveRange(&head, &tail, batch), batch);
    std::vector<void *> objs = Collect(head, batch);
    ASSERT_EQ(int(objs.size()), batch);
    EXPECT_EQ(objs.back(), tail);
    std::set<void *> unique(objs.begin(), objs.end());
    EXPECT_EQ(int(unique.size()), batch);
    for (void *p : objs) {
      uint64_t e = ClassEntry(p);
      ASSERT_EQ(EntryClass(e), cl);
      EXPECT_EQ((reinterpret_cast<uintptr_t>(p) - EntrySpanStart(e)) % kClassShape[cl].size, 0u);
    }
    c.InsertRange(head, batch);
    EXPECT_EQ(c.Validate(), nullptr);
  }
}

TEST_F(CentralListTest, FullBatchesGoThroughTransferSlots) {
  const uint32_t cl = 10;
  CentralList &c = g_central[cl];
  int batch = int(kClassShape[cl].batch);
  void *head, *tail;
  ASSERT_EQ(c.RemoveRange(&head, &tail, batch), batch);
  uint64_t before = c.Stats().slot_objects;
  c.InsertRange(head, batch);
  EXPECT_EQ(c.Stats().slot_objects, before + batch);
  void *head2, *tail2;
  ASSERT_EQ(c.RemoveRange(&head2, &tail2, batch), batch);
  EXPECT_EQ(head2, head) << "a whole batch comes back in O(1)";
  EXPECT_EQ(tail2, tail);
  c.InsertRange(head2, batch);
  EXPECT_EQ(c.Validate(), nullptr);
}

TEST_F(CentralListTest, TryInsertBatchTakesAFreeSlotOrNothing) {
  const uint32_t cl = 12;
  CentralList &c = g_central[cl];
  int batch = int(kClassShape[cl].batch);
  c.ReleaseSlots();  // the batches below then come from the spans
  std::vector<std::pair<void *, void *>> batches(CentralList::kMaxSlots + 1);
  for (auto &[head, tail] : batches) ASSERT_EQ(c.RemoveRange(&head, &tail, batch), batch);
  size_t parked = 0;
  for (auto &[head, tail] : batches) {
    uint64_t before = c.Stats().slot_objects;
    if (!c.TryInsertBatch(head, tail)) {
      EXPECT_EQ(c.Stats().slot_objects, before) << "a refused batch is not taken";
      break;
    }
    EXPECT_EQ(c.Stats().slot_objects, before + batch);
    parked++;
  }
  EXPECT_GE(parked, 1u);
  ASSERT_LT(parked, batches.size()) << "more batches parked than there are slots";
  for (size_t i = parked; i < batches.size(); i++) c.InsertRange(batches[i].first, batches[i].second, batch);
  // The last one parked comes back first, whole, in O(1).
  void *head, *tail;
  ASSERT_EQ(c.RemoveRange(&head, &tail, batch), batch);
  EXPECT_EQ(head, batches[parked - 1].first);
  EXPECT_EQ(tail, batches[parked - 1].second);
  c.InsertRange(head, tail, batch);
  c.ReleaseSlots();
  EXPECT_EQ(c.Stats().slot_objects, 0u);
  EXPECT_EQ(c.Validate(), nullptr);
}

TEST_F(CentralListTest, EmptySpansReturnToThePageHeap) {
  const uint32_t cl = 30;
  CentralList &c = g_central[cl];
  const ClassShape &shape = kClassShape[cl];
  // Take three spans' worth of objects, one at a time (no transfer slots).
  std::vector<void *> objs;
  for (uint32_t i = 0; i < 3 * shape.objects; i++) {
    void *h, *t;
    ASSERT_EQ(c.RemoveRange(&h, &t, 1), 1);
    objs.push_back(h);
  }
  uint64_t spans = c.Stats().spans;
  EXPECT_GE(spans, 3u);
  uint64_t small_bytes = g_page_heap.Stats().small_span_bytes;
  for (void *p : objs) {
    SetLink(p, nullptr);
    c.InsertRange(p, 1);
  }
  EXPECT_EQ(c.Validate(), nullptr);
  EXPECT_LE(c.Stats().spans, 1u) << "at most one empty span is kept";
  EXPECT_LT(g_page_heap.Stats().small_span_bytes, small_bytes);
  EXPECT_EQ(g_page_heap.Validate(), nullptr);
}

// Found by tests/fuzz/api_fuzz: a span object that held a class with many
// objects (all of its free bits in use) came back for a class with fewer, and
// kept the old bits past the new class's last object.
TEST_F(CentralListTest, ReusedSpanKeepsNoFreeBitsOfItsLastClass) {
  auto churn = [](uint32_t cl) {
    CentralList &c = g_central[cl];
    std::vector<void *> objs;
    for (uint32_t i = 0; i < 3 * kClassShape[cl].objects; i++) {
      void *h, *t;
      ASSERT_EQ(c.RemoveRange(&h, &t, 1), 1);
      objs.push_back(h);
    }
    EXPECT_EQ(c.Validate(), nullptr) << "class " << cl;
    for (void *p : objs) {
      *static_cast<void **>(p) = nullptr;
      c.InsertRange(p, 1);
    }
    EXPECT_EQ(c.Validate(), nullptr) << "class " << cl;
  };
  ASSERT_EQ(kClassShape[1].objects, kMaxObjectsPerSpan);  // every bitmap word
  churn(1);                                               // three one-page spans of 1,024 objects back to the page heap
  for (uint32_t cl = 2; cl < kNumClasses; cl++)
    if (kClassShape[cl].pages == 1) churn(cl);  // reuse them with fewer objects
}

TEST_F(CentralListTest, DoubleFreeIntoASpanIsFatal) {
  auto twice = [] {
    const uint32_t cl = 12;
    void *h, *t;
    g_central[cl].RemoveRange(&h, &t, 1);
    SetLink(h, nullptr);
    g_central[cl].InsertRange(h, 1);
    SetLink(h, nullptr);
    g_central[cl].InsertRange(h, 1);
  };
  EXPECT_DEATH(twice(),
               "spanalloc: double free of 0x[0-9a-f]+ \\(free: [0-9]+-byte block, already free in its span\\)");
}

TEST_F(CentralListTest, CorruptedLinkIsReportedBeforeTheSpanIsTouched) {
  // Objects going back to their spans are checked in full: a link that
  // decodes plausibly but points inside an object is reported, naming the
  // object whose link it was.
  auto corrupt = [](int which) {
    const uint32_t cl = 14;
    std::vector<void *> objs;
    for (int i = 0; i < 3; i++) {
      void *h, *t;
      g_central[cl].RemoveRange(&h, &t, 1);
      objs.push_back(h);
    }
    Link(objs, 0, 3);
    char *bad = static_cast<char *>(objs[2]) + (which == 0 ? 8 : 0);
    static char not_heap[64];
    SetLink(objs[1], which == 0 ? static_cast<void *>(bad) : static_cast<void *>(not_heap + 16));
    g_central[cl].InsertRange(objs[0], objs[2], 3);
  };
  EXPECT_DEATH(corrupt(0),
               "spanalloc: free-list corruption of 0x[0-9a-f]+ \\(free: [0-9]+-byte block, free, its link overwritten");
  EXPECT_DEATH(corrupt(1), "spanalloc: free-list corruption of 0x[0-9a-f]+ \\(free: [0-9]+-byte block");
}

TEST_F(CentralListTest, LinkIntoASpansTailIsCorruption) {
  // Past a span's last object lies its tail waste; an address there at a
  // multiple of the size passes the object-start arithmetic, but is no
  // object: its bit would count an object that does not exist.
  uint32_t cl = 1;
  while (cl < kNumClasses && (kClassShape[cl].pages * kPageSize) % kClassShape[cl].size == 0) cl++;
  ASSERT_LT(cl, kNumClasses);
  auto into_tail = [cl] {
    void *h, *t;
    g_central[cl].RemoveRange(&h, &t, 1);
    char *base = reinterpret_cast<char *>(SpanOf(h)->start_addr());
    void *tail = base + size_t(kClassShape[cl].objects) * kClassShape[cl].size;
    SetLink(h, tail);
    g_central[cl].InsertRange(h, tail, 2);
  };
  EXPECT_DEATH(into_tail(), "spanalloc: free-list corruption of 0x[0-9a-f]+ \\(free: [0-9]+-byte block");
}

TEST_F(CentralListTest, ConcurrentRemoveAndInsert) {
  const uint32_t cl = 6;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([t] {
      CentralList &c = g_central[cl];
      int batch = int(kClassShape[cl].batch);
      for (int round = 0; round < 300; round++) {
        int n = (round + t) % 3 == 0 ? batch : 1 + round % batch;
        void *h, *tl;
        int got = c.RemoveRange(&h, &tl, n);
        // n objects, or one whole batch from a transfer slot.
        ASSERT_TRUE(got == n || (n > 1 && got == batch)) << got << " for " << n;
        std::vector<void *> objs = Collect(h, got);
        ASSERT_EQ(int(objs.size()), got);
        ASSERT_EQ(objs.back(), tl);
        for (void *p : objs) static_cast<uint64_t *>(p)[1] = uint64_t(t);
        for (void *p : objs) ASSERT_EQ(static_cast<uint64_t *>(p)[1], uint64_t(t)) << "object handed out twice";
        c.InsertRange(Link(objs, 0, objs.size()), got);
      }
    });
  }
  for (auto &t : threads) t.join();
  EXPECT_EQ(g_central[cl].Validate(), nullptr);
}

// The production lists start all zero (so g_central_lists sits in .bss and
// an unused list costs no RSS) and find their class on first use.
TEST_F(CentralListTest, ListsStartAllZeroAndFindTheirClassOnFirstUse) {
  static const CentralList kUnused;
  for (uint32_t cl : {2u, 17u, kNumClasses - 2}) {
    const unsigned char *bytes = reinterpret_cast<const unsigned char *>(&g_central[cl]);
    EXPECT_EQ(memcmp(bytes, &kUnused, sizeof(CentralList)), 0) << "class " << cl;
#ifdef NDEBUG  // (debug builds' mutexes hold their lock rank)
    EXPECT_EQ(std::count(bytes, bytes + sizeof(CentralList), 0), long(sizeof(CentralList))) << "class " << cl;
#endif
    void *h, *t;
    ASSERT_EQ(g_central[cl].RemoveRange(&h, &t, 1), 1);
    EXPECT_EQ(g_central[cl].size_class(), cl);
    EXPECT_EQ(EntryClass(ClassEntry(h)), cl);
    g_central[cl].InsertRange(h, t, 1);
    EXPECT_EQ(g_central[cl].Validate(), nullptr);
  }
}

// Lazy carving (central_list.h, ObjectRun): a new span's first objects come
// as a run, which the list never writes, so its pages stay untouched.
TEST_F(CentralListTest, ARunOfANewSpanLeavesItsPagesUntouched) {
  const uint32_t cl = SizeClassOf(256);
  ASSERT_GE(kClassShape[cl].objects, 32u);  // two OS pages of objects at least
  CentralList &c = g_central[cl];
  void *h, *t;
  ObjectRun run;
  int n = int(std::min<uint32_t>(kClassShape[cl].batch, kClassShape[cl].objects));
  ASSERT_EQ(c.RemoveRange(&h, &t, n, &run), n);  // this process's first span of the class
  ASSERT_EQ(int(run.count), n);
  EXPECT_EQ(h, nullptr);
  EXPECT_EQ(t, nullptr);
  uintptr_t start = reinterpret_cast<uintptr_t>(run.start);
  EXPECT_EQ(start % kPageSize, 0u) << "a new span's objects from its first";
  unsigned char vec[2] = {1, 1};
  ASSERT_EQ(mincore(reinterpret_cast<void *>(start + 4096), 4096, vec), 0);
  EXPECT_EQ(vec[0] & 1, 0) << "the list wrote into the run";
  EXPECT_EQ(c.Validate(), nullptr);
  c.InsertRun(run);
  EXPECT_EQ(c.Validate(), nullptr);
  EXPECT_EQ(c.Stats().span_free, c.Stats().spans * kClassShape[cl].objects);
}

// ---- one list alone, on a fake page heap (tests/fakes/fake_central_env.h) ----

using fake::FakeCentralEnv;
using fake::FakeCentralList;
using fake::FakePages;

struct FakeListTest : ::testing::Test {
  void SetUp() override { InitLinkSecret(); }
  FakePages pages;
  std::vector<void *> Take(FakeCentralList &list, int count) {
    std::vector<void *> objs;
    for (int i = 0; i < count; i++) {
      void *h, *t;
      if (list.RemoveRange(&h, &t, 1) != 1) break;
      objs.push_back(h);
    }
    return objs;
  }
};

TEST_F(FakeListTest, TheClassIsTheConstructorsAndSpansComeFromBelow) {
  FakeCentralList a(7, FakeCentralEnv{&pages}), b(20, FakeCentralEnv{&pages});
  EXPECT_EQ(a.size_class(), 7u);
  void *h, *t;
  ASSERT_EQ(a.RemoveRange(&h, &t, 1), 1);
  ASSERT_EQ(b.RemoveRange(&h, &t, 1), 1);
  ASSERT_EQ(pages.spans().size(), 2u);
  for (auto &[addr, s] : pages.spans()) EXPECT_TRUE(s->size_class == 7 || s->size_class == 20);
  EXPECT_EQ(pages.SpanOf(h)->size_class, 20u);
  EXPECT_EQ(a.Validate(), nullptr);
  EXPECT_EQ(b.Validate(), nullptr);
}

TEST_F(FakeListTest, WholeSpansGoBackButTheLastPartialOne) {
  const uint32_t cl = 25;
  pages.SetShape(cl, 1, 4);  // few objects per span: many spans
  FakeCentralList list(cl, FakeCentralEnv{&pages});
  uint32_t per_span = pages.Shape(cl).objects;
  std::vector<void *> objs = Take(list, int(3 * per_span));
  ASSERT_EQ(objs.size(), 3 * per_span);
  EXPECT_EQ(pages.spans().size(), 3u);
  EXPECT_EQ(list.Stats().spans, 3u);
  for (void *p : objs) {
    SetLink(p, nullptr);
    list.InsertRange(p, p, 1);
    EXPECT_EQ(list.Validate(), nullptr);
  }
  EXPECT_EQ(pages.freed, 2u) << "two spans back, one kept against thrashing";
  EXPECT_EQ(list.Stats().spans, 1u);
  EXPECT_EQ(list.Stats().span_free, per_span);
}

TEST_F(FakeListTest, OneBatchOverManySpansInAnyOrder) {
  // Objects go back to their spans in runs (central_list_impl.h): a batch
  // that alternates between spans, comes back to one, and makes spans whole
  // in its middle keeps every count right.
  const uint32_t cl = 25;
  pages.SetShape(cl, 1, 64);
  FakeCentralList list(cl, FakeCentralEnv{&pages});
  uint32_t per_span = pages.Shape(cl).objects;
  std::vector<void *> objs = Take(list, int(4 * per_span));
  ASSERT_EQ(objs.size(), 4 * per_span);
  // Keep one object of the last span out; send the rest back interleaved:
  // span 0's and 1's objects alternating, then 2's, then 3's but one.
  std::vector<void *> order;
  for (uint32_t i = 0; i < per_span; i++) {
    order.push_back(objs[i]);
    order.push_back(objs[per_span + i]);
  }
  for (uint32_t i = 0; i < per_span; i++) order.push_back(objs[2 * per_span + i]);
  for (uint32_t i = 0; i + 1 < per_span; i++) order.push_back(objs[3 * per_span + i]);
  list.InsertRange(Link(order, 0, order.size()), int(order.size()));
  EXPECT_EQ(list.Validate(), nullptr);
  // Span 0 whole while 1 is partial: back to the page heap; span 1 whole
  // while no other span is partial: kept against thrashing; span 2 whole
  // while 1 is kept: back; span 3 partial.
  EXPECT_EQ(pages.freed, 2u);
  EXPECT_EQ(list.Stats().spans, 2u);
  EXPECT_EQ(list.Stats().span_free, 2 * per_span - 1);
  SetLink(objs.back(), nullptr);
  list.InsertRange(objs.back(), 1);
  EXPECT_EQ(list.Validate(), nullptr);
  EXPECT_EQ(pages.freed, 3u);
  EXPECT_EQ(list.Stats().spans, 1u);
  EXPECT_EQ(list.Stats().span_free, per_span);
}

TEST_F(FakeListTest, ARefusingPageHeapGivesFewerOrNone) {
  uint32_t cl = 1;
  while (kClassShape[cl].size <= kPageSize / 8) cl++;  // fewer than 8 objects in a page
  pages.SetShape(cl, 1, 8);
  FakeCentralList list(cl, FakeCentralEnv{&pages});
  uint32_t per_span = pages.Shape(cl).objects;
  ASSERT_LT(per_span, 8u);
  pages.fail_next = 1;
  void *h, *t;
  EXPECT_EQ(list.RemoveRange(&h, &t, 8), 0) << "the page heap refused: nothing, no crash";
  EXPECT_EQ(list.Validate(), nullptr);
  // One span, then a refusal: the objects of the one span only.
  ASSERT_EQ(list.RemoveRange(&h, &t, 1), 1);
  pages.fail_next = 1;
  int got = list.RemoveRange(&h, &t, 8);
  EXPECT_EQ(got, int(per_span) - 1);
  EXPECT_EQ(Collect(h, got).size(), size_t(got));
  EXPECT_EQ(LinkOf(t), nullptr);
  EXPECT_EQ(list.Validate(), nullptr);
}

// The first objects of an all-free span come as a run (unwritten: the fake's
// fill byte stays); a span partly used is linked as ever; a run given back
// is free again.
TEST_F(FakeListTest, RunsComeFromAllFreeSpansOnly) {
  const uint32_t cl = SizeClassOf(256);
  FakeCentralList list(cl, FakeCentralEnv{&pages});
  const uint32_t size = pages.Shape(cl).size, objects = pages.Shape(cl).objects;
  ASSERT_GE(objects, 32u);
  void *h, *t;
  ObjectRun run;
  ASSERT_EQ(list.RemoveRange(&h, &t, 20, &run), 20);
  ASSERT_EQ(run.count, 20u) << "a new span";
  EXPECT_EQ(h, nullptr);
  char *base = static_cast<char *>(run.start);
  EXPECT_EQ(pages.SpanOf(base)->start_addr(), reinterpret_cast<uintptr_t>(base));
  for (size_t i = 0; i < size_t(20) * size; i++) ASSERT_EQ(uint8_t(base[i]), 0xa5) << "written at byte " << i;
  EXPECT_EQ(list.Validate(), nullptr);
  EXPECT_EQ(list.Stats().span_free, objects - 20);
  // Objects 20..23 one at a time (never a run), then the run's end back.
  std::vector<void *> single = Take(list, 4);
  for (size_t i = 0; i < single.size(); i++) EXPECT_EQ(single[i], base + (20 + i) * size);
  list.InsertRun(ObjectRun{base + 10 * size, 10});
  EXPECT_EQ(list.Validate(), nullptr);
  // 16 more from the span, partly used: linked, lowest first.
  ASSERT_EQ(list.RemoveRange(&h, &t, 16, &run), 16);
  EXPECT_EQ(run.count, 0u);
  std::vector<void *> got = Collect(h, 16);
  ASSERT_EQ(got.size(), 16u);
  for (size_t i = 0; i < 16; i++) EXPECT_EQ(got[i], base + (i < 10 ? 10 + i : 14 + i) * size) << i;
  EXPECT_EQ(list.Validate(), nullptr);
  // All back: the span's objects are all free.
  list.InsertRun(ObjectRun{base, 10});
  list.InsertRange(h, t, 16);
  for (void *p : single) {
    SetLink(p, nullptr);
    list.InsertRange(p, p, 1);
  }
  EXPECT_EQ(list.Validate(), nullptr);
  EXPECT_EQ(list.Stats().span_free, objects);
  EXPECT_EQ(pages.spans().size(), 1u) << "the class's only span is kept";
  // All free again: a run again.
  ASSERT_EQ(list.RemoveRange(&h, &t, 20, &run), 20);
  EXPECT_EQ(run.start, base);
  EXPECT_EQ(run.count, 20u);
  list.InsertRun(run);
  EXPECT_EQ(list.Validate(), nullptr);
  EXPECT_DEATH(list.InsertRun(ObjectRun{base, 4}), "run given back is already free");
}

}  // namespace
}  // namespace spanalloc
