// The page heap alone: allocation, splitting, coalescing, the treap of long
// runs, alignment, release to the OS. Validate() runs after every step. The
// first tests run a heap on the real page map and OS; the last ones run one
// on fakes of them (FakeHeapTest).
#include "page_heap.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "fakes/fake_page_heap_env.h"
#include "options.h"
#include "os_memory.h"
#include "page_heap_impl.h"
#include "page_map.h"

namespace spanalloc {
namespace {

// One heap for every test here: free spans of two heaps could sit side by
// side in the address space, and a heap coalesces with whatever free span
// the page map shows next to its own. Every test frees all it allocates.
constinit PageHeap g_test_heap;

#define EXPECT_VALID(heap) EXPECT_EQ((heap).Validate(), nullptr)

Span *Large(PageHeap &heap, Length n, Length align = 1) {
  bool zeroed;
  Span *s = heap.AllocLarge(n, align, &zeroed);
  EXPECT_NE(s, nullptr);
  return s;
}

TEST(PageHeap, AllocatesDisjointSpansMappedInThePageMap) {
  PageHeap &heap = g_test_heap;
  std::vector<Span *> spans;
  for (Length n = 1; n <= 300; n += 7) {
    Span *s = Large(heap, n);
    ASSERT_EQ(s->npages, n);
    EXPECT_EQ(s->state, SpanState::kLarge);
    for (PageId p = s->start; p < s->start + n; p++) ASSERT_EQ(SpanOfPage(p), s);
    EXPECT_EQ(ClassEntry(PageAddr(s->start)), 0u);
    memset(PageAddr(s->start), 0x11, s->bytes());
    spans.push_back(s);
    EXPECT_VALID(heap);
  }
  std::sort(spans.begin(), spans.end(), [](Span *a, Span *b) { return a->start < b->start; });
  for (size_t i = 1; i < spans.size(); i++) EXPECT_LE(spans[i - 1]->start + spans[i - 1]->npages, spans[i]->start);
  for (Span *s : spans) {
    heap.Free(s);
    EXPECT_VALID(heap);
  }
  EXPECT_EQ(heap.Stats().large_bytes, 0u);
}

TEST(PageHeap, FreeNeighboursCoalesce) {
  PageHeap &heap = g_test_heap;
  Span *a = Large(heap, 10), *b = Large(heap, 20), *c = Large(heap, 30);
  // One growth chunk: the three are adjacent.
  ASSERT_EQ(a->start + 10, b->start);
  ASSERT_EQ(b->start + 20, c->start);
  PageId start = a->start;
  heap.Free(b);
  EXPECT_VALID(heap);
  heap.Free(a);
  EXPECT_VALID(heap);
  heap.Free(c);
  EXPECT_VALID(heap);
  // The three are one committed free span: a request for all of them fits at
  // the original start.
  Span *three = Large(heap, 60);
  EXPECT_EQ(three->start, start);
  heap.Free(three);
  EXPECT_VALID(heap);
  // Committed and released spans do not merge; once released, the whole
  // chunk is one free span again: a request for all of it fits at the
  // original start.
  heap.ReleaseAll();
  EXPECT_VALID(heap);
  Length whole = PageHeap::kGrowBytes >> kPageShift;
  Span *all = Large(heap, whole);
  EXPECT_EQ(all->start, start);
  heap.Free(all);
  EXPECT_VALID(heap);
}

// Free of several spans in one call (the central list's, as small spans
// empty): each one as Free(s) would leave it, neighbours coalesced, small
// spans' class entries cleared, the counts right.
TEST(PageHeap, FreeOfManySpansInOneCall) {
  PageHeap &heap = g_test_heap;
  Span *s[6];
  for (int i = 0; i < 6; i++) s[i] = i % 2 ? heap.AllocSmall(1, 3) : Large(heap, 2 + i);
  for (int i = 1; i < 6; i++) ASSERT_EQ(s[i - 1]->start + s[i - 1]->npages, s[i]->start);  // adjacent
  PageId start = s[0]->start;
  Length pages = 0;
  for (Span *x : s) pages += x->npages;
  PageHeapStats before = heap.Stats();
  // Out of address order, neighbours among them.
  Span *batch[6] = {s[3], s[0], s[5], s[1], s[4], s[2]};
  heap.Free(batch, 6);
  EXPECT_VALID(heap);
  for (PageId p = start; p < start + pages; p++) EXPECT_EQ(ClassEntry(PageAddr(p)), 0u);
  PageHeapStats after = heap.Stats();
  EXPECT_EQ(after.small_span_bytes, before.small_span_bytes - (3 << kPageShift));
  EXPECT_EQ(after.large_bytes, before.large_bytes - ((pages - 3) << kPageShift));
  EXPECT_LE(after.spans, before.spans - 5) << "six adjacent spans coalesce into one (and with free neighbours)";
  // One committed free span: a request for all of them fits at the start.
  Span *all = Large(heap, pages);
  EXPECT_EQ(all->start, start);
  heap.Free(all);
  heap.Free(batch, 0);  // nothing
  EXPECT_VALID(heap);
}

TEST(PageHeap, BestFitAmongLongRuns) {
  PageHeap &heap = g_test_heap;
  // Free runs of 300, 200 and 250 pages separated by live spans.
  Span *r300 = Large(heap, 300), *sep1 = Large(heap, 1);
  Span *r200 = Large(heap, 200), *sep2 = Large(heap, 1);
  Span *r250 = Large(heap, 250), *sep3 = Large(heap, 1);
  PageId s250 = r250->start, s200 = r200->start;
  heap.Free(r300);
  heap.Free(r200);
  heap.Free(r250);
  EXPECT_VALID(heap);
  Span *got = Large(heap, 240);
  EXPECT_EQ(got->start, s250) << "best fit is the 250-page run";
  Span *got2 = Large(heap, 150);
  EXPECT_EQ(got2->start, s200) << "then the 200-page run";
  for (Span *s : {got, got2, sep1, sep2, sep3}) heap.Free(s);
  EXPECT_VALID(heap);
}

TEST(PageHeap, AlignedSpans) {
  PageHeap &heap = g_test_heap;
  std::vector<Span *> spans;
  for (Length align : {2, 4, 16, 128}) {
    Span *s = Large(heap, 3, align);
    EXPECT_EQ(s->start % align, 0u);
    EXPECT_EQ(s->npages, 3u);
    spans.push_back(s);
    EXPECT_VALID(heap);
  }
  for (Span *s : spans) heap.Free(s);
  EXPECT_VALID(heap);
}

TEST(PageHeap, ReleaseReturnsMemoryAndReusedMemoryIsZero) {
  PageHeap &heap = g_test_heap;
  Span *s = Large(heap, 64);
  memset(PageAddr(s->start), 0x77, s->bytes());
  PageId start = s->start;
  heap.Free(s);
  size_t released = heap.ReleaseAll();
  EXPECT_GE(released, 64 * kPageSize);
  EXPECT_EQ(heap.Stats().free_bytes, 0u);
  EXPECT_VALID(heap);
  unsigned char vec[64 * kPageSize / 4096];
  ASSERT_EQ(mincore(PageAddr(start), 64 * kPageSize, vec), 0);
  for (unsigned char v : vec) EXPECT_EQ(v & 1, 0);
  bool zeroed = false;
  Span *again = heap.AllocLarge(64, 1, &zeroed);
  ASSERT_NE(again, nullptr);
  EXPECT_TRUE(zeroed);
  const char *mem = static_cast<const char *>(PageAddr(again->start));
  for (size_t i = 0; i < again->bytes(); i += 512) ASSERT_EQ(mem[i], 0);
  heap.Free(again);
}

// Huge-page mode: a due span gives back only the whole 2 MiB ranges inside
// it; its ends stay committed (parked) until pressure or malloc_trim.
TEST(PageHeap, HugePageModeReleasesWholeHugePagesOnly) {
  PageHeap &heap = g_test_heap;
  Options saved = g_options;
  constexpr Length kHuge = kHugePageSize >> kPageShift;
  // A span starting 10 pages past a huge-page boundary, 600 pages long: one
  // whole huge page inside ([246, 502) of it), 246 + 98 pages around it.
  // Cut from one block, in order, whatever free spans earlier tests left:
  // with none of them committed, its tail is the only committed free span,
  // and a request takes a committed span first.
  heap.ReleaseAll();
  Span *block = Large(heap, kHuge + 10 + 600 + 1, kHuge);
  ASSERT_TRUE(heap.ResizeInPlace(block, kHuge));
  Span *pad = Large(heap, 10);
  Span *s = Large(heap, 600);
  Span *after = Large(heap, 1);
  g_options.hugepages = true;
  g_options.release_delay_ms = 0;
  g_options.retain_bytes = 0;
  ASSERT_EQ(pad->start, block->start + kHuge);
  ASSERT_EQ(s->start, pad->start + 10);
  ASSERT_EQ(after->start, s->start + 600);
  memset(PageAddr(s->start), 0x22, s->bytes());
  uint64_t released_before = heap.Stats().released_bytes;
  heap.Free(s);  // due at once (delay 0): the page heap releases on Free
  size_t released = 0;
  heap.ReleaseDue(&released);
  EXPECT_VALID(heap);
  PageHeapStats st = heap.Stats();
  EXPECT_EQ(st.released_bytes - released_before, kHugePageSize);
  EXPECT_EQ(st.free_bytes, (600 - kHuge) << kPageShift);
  heap.ReleaseAll();  // malloc_trim: the parked ends go too
  EXPECT_VALID(heap);
  EXPECT_EQ(heap.Stats().free_bytes, 0u);
  heap.Free(block);
  heap.Free(pad);
  heap.Free(after);
  heap.ReleaseAll();
  EXPECT_VALID(heap);
  g_options = saved;
}

// Over the cap (and before the delay), exactly the excess goes back, from
// the oldest free spans: a span larger than the excess keeps the rest
// committed, so a block freed a moment ago is reused without faulting. The
// cap lets committed bytes (in use plus free) reach twice the peak in use:
// blocks of growing sizes a < b < c, each live alone (so the peak is c) and
// each too long for the free spans before it (so each takes fresh pages),
// leave a + b + c free, over 2 c when a + b > c.
TEST(PageHeap, OverTheCapOnlyTheExcessIsReleased) {
  PageHeap &heap = g_test_heap;
  Options saved = g_options;
  g_options.free_cap_bytes = 0;          // the cap is twice the peak in use, less the use
  g_options.release_delay_ms = 1000000;  // nothing falls due meanwhile
  heap.ReleaseAll();                     // no committed free span from before
  PageHeapStats st = heap.Stats();
  ASSERT_EQ(st.large_bytes + st.small_span_bytes, 0u) << "a test before this one left a span in use";
  // Longer than the peak so far: this test's peak is the heap's.
  const Length peak_before = (heap.FreeCap() / 2) >> kPageShift;
  const Length a = std::max<Length>(300, peak_before + 1), b = a + 100, c = a + 200;
  // b and c aligned far apart: released gaps (which do not coalesce with
  // committed spans) keep the three free spans apart.
  const Length align = std::bit_ceil(4 * c);
  Span *as = Large(heap, a);
  memset(PageAddr(as->start), 1, as->bytes());
  PageId a_start = as->start;
  heap.Free(as);  // oldest
  Span *bs = Large(heap, b, align);
  memset(PageAddr(bs->start), 2, bs->bytes());
  PageId b_start = bs->start;
  heap.Free(bs);
  Span *cs = Large(heap, c, align);
  memset(PageAddr(cs->start), 3, cs->bytes());
  PageId c_start = cs->start;
  auto apart = [](PageId x, Length xn, PageId y, Length yn) { return x + xn < y || y + yn < x; };
  ASSERT_TRUE(apart(a_start, a, b_start, b) && apart(a_start, a, c_start, c) && apart(b_start, b, c_start, c))
      << "not apart: " << a_start << " " << b_start << " " << c_start;
  EXPECT_EQ(heap.FreeCap(), c << kPageShift) << "the peak is c, and c is in use";
  uint64_t released_before = heap.Stats().released_bytes;
  heap.Free(cs);  // a + b + c free; cap 2 c: a + b - c pages of excess
  EXPECT_VALID(heap);
  st = heap.Stats();
  EXPECT_EQ(heap.FreeCap(), (2 * c) << kPageShift);
  EXPECT_EQ(st.free_bytes, heap.FreeCap()) << "released more or less than the excess";
  EXPECT_EQ(st.released_bytes - released_before, (a + b - c) << kPageShift);
  // The excess came from the end of a; its first pages stay committed.
  unsigned char vec[kPageSize / 4096];  // one byte per OS page
  ASSERT_EQ(mincore(PageAddr(a_start), kPageSize, vec), 0);
  EXPECT_EQ(vec[0] & 1, 1) << "the start of a was released";
  ASSERT_EQ(mincore(PageAddr(a_start + a - 1), kPageSize, vec), 0);
  EXPECT_EQ(vec[0] & 1, 0) << "the end of a was kept";
  heap.ReleaseAll();
  EXPECT_VALID(heap);
  g_options = saved;
}

// A use that dips and climbs again within the delay reuses the pages it
// freed: with the heap's committed bytes within twice its peak, nothing is
// released (a cap of the peak alone released n pages: 3 n + 1 free passed
// the peak, 2 n + 1).
TEST(PageHeap, ADipInUseReleasesNothingWithinTheDelay) {
  PageHeap &heap = g_test_heap;
  Options saved = g_options;
  g_options.free_cap_bytes = 0;
  g_options.release_delay_ms = 1000000;
  heap.ReleaseAll();
  PageHeapStats st = heap.Stats();
  uint64_t in_use = st.large_bytes + st.small_span_bytes;
  const Length peak_before = ((heap.FreeCap() + in_use) / 2) >> kPageShift;
  const Length n = std::max<Length>(200, peak_before + 1);
  Span *x = Large(heap, n), *y = Large(heap, n);
  PageId x_start = x->start;
  memset(PageAddr(x->start), 1, x->bytes());
  memset(PageAddr(y->start), 2, y->bytes());
  heap.Free(x);
  Span *z = Large(heap, n + 1);  // fits no free span: fresh pages; the peak is now 2n + 1
  memset(PageAddr(z->start), 3, z->bytes());
  uint64_t released_before = heap.Stats().released_bytes;
  heap.Free(y);
  heap.Free(z);
  EXPECT_VALID(heap);
  EXPECT_EQ(heap.Stats().released_bytes, released_before) << "released within the delay";
  EXPECT_EQ(heap.Stats().free_bytes, (3 * n + 1) << kPageShift);
  Span *again = Large(heap, 2 * n);  // x and y, coalesced: no page faults in
  EXPECT_EQ(again->start, x_start);
  heap.Free(again);
  heap.ReleaseAll();
  EXPECT_VALID(heap);
  g_options = saved;
}

// A committed free span is taken before a released one, even when the
// released one fits more tightly: its pages need not fault in again.
TEST(PageHeap, CommittedSpansAreTakenFirst) {
  PageHeap &heap = g_test_heap;
  Span *r = Large(heap, 50), *sep1 = Large(heap, 1), *c = Large(heap, 200), *sep2 = Large(heap, 1);
  PageId r_start = r->start, c_start = c->start;
  heap.Free(r);
  heap.ReleaseAll();  // r released (and all else free)
  heap.Free(c);       // c committed
  EXPECT_VALID(heap);
  bool zeroed = true;
  Span *got = heap.AllocLarge(50, 1, &zeroed);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->start, c_start) << "took a released span (r at " << r_start << ")";
  EXPECT_FALSE(zeroed) << "committed memory is not known to be zero";
  EXPECT_VALID(heap);
  // Only when no committed span fits does a released one serve.
  Span *big = heap.AllocLarge(151, 1, &zeroed);
  ASSERT_NE(big, nullptr);
  EXPECT_TRUE(zeroed);
  EXPECT_NE(big->start, c_start + 50);
  for (Span *s : {got, big, sep1, sep2}) heap.Free(s);
  heap.ReleaseAll();
  EXPECT_VALID(heap);
}

TEST(PageHeap, SmallSpansCarryTheirClassInThePageMap) {
  PageHeap &heap = g_test_heap;
  Span *s = heap.AllocSmall(3, 42);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->state, SpanState::kSmall);
  for (PageId p = s->start; p < s->start + 3; p++)
    EXPECT_EQ(ClassEntry(PageAddr(p)), MakeClassEntry(s->start_addr(), 42));
  PageId start = s->start;
  heap.Free(s);
  for (PageId p = start; p < start + 3; p++) EXPECT_EQ(ClassEntry(PageAddr(p)), 0u);
  EXPECT_VALID(heap);
}

TEST(PageHeap, RandomOperationsKeepInvariants) {
  PageHeap &heap = g_test_heap;
  std::mt19937 rng(12345);
  std::vector<Span *> live;
  for (int step = 0; step < 3000; step++) {
    if (live.empty() || rng() % 100 < 55) {
      Length n = rng() % 4 == 0 ? 129 + rng() % 600 : 1 + rng() % 40;
      Length align = rng() % 10 == 0 ? Length{1} << (rng() % 6) : 1;
      Span *s = Large(heap, n, align);
      ASSERT_EQ(s->start % align, 0u);
      *static_cast<uint64_t *>(PageAddr(s->start)) = s->start;
      live.push_back(s);
    } else {
      size_t i = rng() % live.size();
      ASSERT_EQ(*static_cast<uint64_t *>(PageAddr(live[i]->start)), live[i]->start) << "span memory overlapped";
      heap.Free(live[i]);
      live[i] = live.back();
      live.pop_back();
    }
    if (step % 10 == 0) {
      ASSERT_EQ(heap.Validate(), nullptr) << "step " << step;
    }
  }
  for (Span *s : live) heap.Free(s);
  EXPECT_VALID(heap);
  EXPECT_EQ(heap.Stats().large_bytes, 0u);
}

// ---- the page heap alone, on a fake of the page map, the OS and the clock ----
// (tests/fakes/fake_page_heap_env.h: its address space faults when touched,
// so every test here also checks that the page heap never touches span
// memory.)

using fake::FakePageHeap;
using fake::FakePageHeapEnv;
using fake::FakeWorld;

struct FakeHeapTest : ::testing::Test {
  FakeWorld world{size_t{4} << 30};
  std::unique_ptr<FakePageHeap> heap = std::make_unique<FakePageHeap>(FakePageHeapEnv{&world});
  void SetUp() override { world.heap_lock = &heap->lock(); }
  Span *Large(Length n, Length align = 1, bool *zeroed = nullptr) {
    bool z;
    Span *s = heap->AllocLarge(n, align, zeroed ? zeroed : &z);
    if (s) world.SetDirty(s->start, s->npages);  // the user writes it
    return s;
  }
  // Every mapped page is in use, free committed or released.
  void ExpectAccounted(uint64_t in_use_bytes) {
    PageHeapStats st = heap->Stats();
    EXPECT_EQ(uint64_t(world.mapped_pages) << kPageShift, in_use_bytes + st.free_bytes + st.released_bytes);
    EXPECT_EQ(uint64_t(world.clean_pages) << kPageShift, st.released_bytes);
  }
};

TEST_F(FakeHeapTest, GrowsFromTheOsAndReusesReleasedMemoryAsZero) {
  bool zeroed = false;
  Span *a = Large(10, 1, &zeroed);
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(zeroed) << "fresh mappings read as zero";
  EXPECT_EQ(world.mapped_pages, FakePageHeap::kGrowBytes >> kPageShift);
  for (PageId p = a->start; p < a->start + 10; p++) EXPECT_EQ(world.MappedSpan(p), a);
  ExpectAccounted(a->bytes());
  PageId start = a->start;
  heap->Free(a);
  Span *b = Large(10, 1, &zeroed);
  EXPECT_EQ(b->start, start);
  EXPECT_FALSE(zeroed) << "written and not released since";
  heap->Free(b);
  EXPECT_GE(heap->ReleaseAll(), 10 * kPageSize);
  ExpectAccounted(0);
  Span *c = Large(10, 1, &zeroed);
  EXPECT_TRUE(zeroed);
  heap->Free(c);
  EXPECT_EQ(heap->Validate(), nullptr);
}

TEST_F(FakeHeapTest, FailsOnlyWhenTheOsRefusesAndWorksAgainAfter) {
  for (uint64_t FakeWorld::*fail : {&FakeWorld::fail_map, &FakeWorld::fail_ensure}) {
    world.*fail = 5;                    // growth: the big mapping, then the exact size
    EXPECT_EQ(Large(100000), nullptr);  // more than the first growth
    world.*fail = 0;
    EXPECT_EQ(heap->Validate(), nullptr);
  }
  heap->span_alloc().fail_next = 1;
  EXPECT_EQ(Large(3), nullptr);
  Span *s = Large(100000);
  ASSERT_NE(s, nullptr);
  constexpr Length kHuge = kHugePageSize >> kPageShift;
  EXPECT_EQ(world.mapped_pages, (100000 + kHuge - 1) / kHuge * kHuge) << "one mapping: the request in huge pages";
  ExpectAccounted(s->bytes());
  heap->Free(s);
  EXPECT_EQ(heap->Validate(), nullptr);
}

TEST_F(FakeHeapTest, ReleasesAfterTheDelayOnTheClock) {
  world.options.release_delay_ms = 1000;
  world.options.free_cap_bytes = uint64_t{1} << 40;
  Span *keep = Large(5), *s = Large(40);
  uint64_t freed_at = world.now;
  heap->Free(s);
  size_t released = 0;
  EXPECT_EQ(heap->ReleaseDue(&released), freed_at + 1000) << "due one delay after the free";
  EXPECT_EQ(released, 0u);
  world.now += 999;
  EXPECT_EQ(heap->ReleaseDue(&released), freed_at + 1000);
  EXPECT_EQ(released, 0u);
  world.now += 1;
  heap->ReleaseDue(&released);
  EXPECT_EQ(released, 40 * kPageSize);
  EXPECT_EQ(heap->Stats().free_bytes, 0u);
  ExpectAccounted(keep->bytes());
  heap->Free(keep);
  EXPECT_EQ(heap->Validate(), nullptr);
}

// Found by page_heap_fuzz: realloc shrinking a block of 1 MiB or more, when
// ResizeInPlace failed for want of a Span object, went on to Remap, whose
// mremap shrank the mapping and whose page-map update then ran over
// n - npages (negative: 2^64 - 135) pages.
TEST_F(FakeHeapTest, RemapNeverShrinks) {
  Span *s = Large(137);
  heap->span_alloc().fail_next = 1;
  EXPECT_FALSE(heap->ResizeInPlace(s, 2));
  EXPECT_EQ(heap->Remap(s, 2), nullptr);
  EXPECT_EQ(heap->Remap(s, 137), nullptr);
  EXPECT_EQ(s->npages, 137u);
  for (PageId p = s->start; p < s->start + 137; p++) ASSERT_EQ(world.MappedSpan(p), s);
  EXPECT_EQ(heap->Validate(), nullptr);
  ExpectAccounted(s->bytes());
  heap->Free(s);
}

// Found by page_heap_fuzz: in huge-page mode a due span whose ends must be
// parked needs two Span objects; out of metadata memory, the background
// release aborted the process ("out of metadata memory").
TEST_F(FakeHeapTest, HugePageReleaseOutOfMetadataParksTheWholeSpan) {
  world.options.hugepages = true;
  world.options.release_delay_ms = 0;
  world.options.free_cap_bytes = uint64_t{1} << 40;
  constexpr Length kHuge = kHugePageSize >> kPageShift;
  Span *pad = Large(10), *s = Large(2 * kHuge), *after = Large(1);
  ASSERT_EQ(s->start % kHuge, 10u) << "not huge-page aligned: two ends to park";
  heap->span_alloc().fail_next = 2;
  world.on_scavenger_thread = true;  // no release inside Free: ReleaseDue below
  heap->Free(s);
  size_t released = 0;
  heap->ReleaseDue(&released);
  EXPECT_EQ(released, 0u) << "nothing cut: the whole span waits, parked";
  EXPECT_EQ(heap->Stats().free_bytes, 2 * kHuge * kPageSize);
  EXPECT_EQ(heap->Validate(), nullptr);
  heap->ReleaseAll();
  EXPECT_EQ(heap->Stats().free_bytes, 0u);
  ExpectAccounted(pad->bytes() + after->bytes());
  heap->Free(pad);
  heap->Free(after);
  EXPECT_EQ(heap->Validate(), nullptr);
}

// While Remap moves a block, its old range is a hole in the address space
// until it is mapped again; another thread's Remap of the block before it
// must not grow into that hole (the refill would then map over it).
TEST_F(FakeHeapTest, RemapNeverGrowsIntoTheHoleOfAMoveInFlight) {
  Span *a = Large(200), *b = Large(200), *c = Large(1);
  ASSERT_EQ(a->start + 200, b->start);
  ASSERT_EQ(b->start + 200, c->start);
  PageId a_start = a->start;
  Span *a2 = nullptr;
  int inside = 0;
  world.hook = [&](const char *what) {
    if (strcmp(what, "OsRemapMoveTo") != 0 || inside++ > 0) return;
    EXPECT_FALSE(heap->ResizeInPlace(a, 300));
    a2 = heap->Remap(a, 300);  // "another thread", b's old range a hole now
  };
  Span *b2 = heap->Remap(b, 400);  // c is in the way: b moves
  world.hook = nullptr;
  ASSERT_NE(b2, nullptr);
  ASSERT_NE(a2, nullptr);
  EXPECT_NE(a2->start, a_start) << "a moved too: it did not grow into b's old range";
  world.SetDirty(a2->start, a2->npages);
  world.SetDirty(b2->start, b2->npages);
  EXPECT_EQ(heap->Validate(), nullptr);
  ExpectAccounted(a2->bytes() + b2->bytes() + c->bytes());
  for (Span *s : {a2, b2, c}) heap->Free(s);
  EXPECT_EQ(heap->Validate(), nullptr);
}

// madvise(MADV_DONTNEED) fails for good on locked memory (mlockall): a
// release round that the OS refuses ends instead of taking the same spans
// again (ReleaseAll, hence malloc_trim, looped forever).
TEST_F(FakeHeapTest, AReleaseTheOsRefusesEndsTheRound) {
  Span *s = Large(40), *t = Large(3), *keep = Large(1);
  heap->Free(s);
  heap->Free(t);
  world.fail_release = uint64_t{1} << 40;  // from now on, always
  EXPECT_EQ(heap->ReleaseAll(), 0u);
  world.options.release_delay_ms = 0;
  world.options.free_cap_bytes = 0;  // every free byte over the cap: due at once
  size_t released = 1;
  heap->ReleaseDue(&released);
  EXPECT_EQ(released, 0u);
  heap->MaybeRelease();
  EXPECT_EQ(heap->Validate(), nullptr);
  world.fail_release = 0;
  EXPECT_EQ(heap->ReleaseAll(), 43 * kPageSize) << "released once the OS agrees";
  ExpectAccounted(keep->bytes());
  heap->Free(keep);
}

TEST_F(FakeHeapTest, NothingIsMadeWithTheLockHeldButPageMapLeaves) {
  // FakeWorld checks the lock in every OS and scavenger call; "another
  // thread" frees and allocates while the heap releases without its lock.
  Span *a = Large(8), *b = Large(8), *c = Large(8);
  Span *d = nullptr;
  int inside = 0;
  world.hook = [&](const char *what) {
    if (strcmp(what, "OsRelease") != 0 || inside++ > 0) return;
    heap->Free(b);  // a neighbour of a span being released
    d = Large(3);
  };
  heap->Free(a);
  heap->ReleaseAll();
  world.hook = nullptr;
  EXPECT_EQ(heap->Validate(), nullptr);
  ASSERT_NE(d, nullptr);
  heap->Free(c);
  heap->Free(d);
  heap->ReleaseAll();
  ExpectAccounted(0);
  EXPECT_EQ(heap->Validate(), nullptr);
}

}  // namespace
}  // namespace spanalloc
