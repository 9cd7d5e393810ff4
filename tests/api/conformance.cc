// Conformance of the standard interface: every C function and every
// replaceable operator new/delete, across all size ranges (1 B .. 64 MiB)
// and alignments (8 B .. 1 MiB).
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "api_common.h"

using namespace api;

namespace {

// Sizes covering every range: each size up to 1 KiB, then both sides of
// every power of two and some odd sizes up to 64 MiB.
std::vector<size_t> all_sizes() {
  std::vector<size_t> v;
  for (size_t n = 1; n <= 1024; ++n) v.push_back(n);
  for (size_t p = 2 * kKiB; p <= 64 * kMiB; p *= 2) {
    v.push_back(p - 1);
    v.push_back(p);
    if (p < 64 * kMiB) v.push_back(p + 1);
    v.push_back(p - p / 4 + 7);
  }
  // Around the small/large boundary (32 KiB) and the page size.
  for (size_t n : {4095ul, 4097ul, 8191ul, 8193ul, 28672ul, 32767ul, 32768ul, 32769ul, 40000ul, 65535ul})
    v.push_back(n);
  return v;
}

std::vector<size_t> alignments() {
  std::vector<size_t> v;
  for (size_t a = 8; a <= kMiB; a *= 2) v.push_back(a);
  return v;
}

// Writes the whole usable size and checks the requested part reads back.
void check_block(void *p, size_t requested, size_t align, const char *what) {
  ASSERT_NE(p, nullptr) << what << "(" << requested << ")";
  ASSERT_TRUE(is_aligned(p, align)) << what << "(" << requested << ") = " << p << " not aligned to " << align;
  size_t usable = malloc_usable_size(p);
  ASSERT_GE(usable, requested) << what << "(" << requested << ")";
  fill_pattern(p, usable, requested);
  ASSERT_EQ(check_pattern(p, usable, requested), SIZE_MAX) << what << "(" << requested << ")";
}

}  // namespace

// Every entry point of the interface, as the program binds it, is spanalloc's.
TEST(Conformance, EveryEntryPointIsSpanalloc) {
  struct Entry {
    const char *name;
    void *linked;
  };
  using std::align_val_t;
  using std::nothrow_t;
  using std::size_t;
  const Entry entries[] = {
      {"malloc", reinterpret_cast<void *>(&malloc)},
      {"free", reinterpret_cast<void *>(&free)},
      {"calloc", reinterpret_cast<void *>(&calloc)},
      {"realloc", reinterpret_cast<void *>(&realloc)},
      {"reallocarray", reinterpret_cast<void *>(&reallocarray)},
      {"posix_memalign", reinterpret_cast<void *>(&posix_memalign)},
      {"aligned_alloc", reinterpret_cast<void *>(&aligned_alloc)},
      {"memalign", reinterpret_cast<void *>(&memalign)},
      {"valloc", reinterpret_cast<void *>(&valloc)},
      {"pvalloc", reinterpret_cast<void *>(&pvalloc)},
      {"malloc_usable_size", reinterpret_cast<void *>(&malloc_usable_size)},
      {"free_sized", reinterpret_cast<void *>(free_sized_fn())},
      {"free_aligned_sized", reinterpret_cast<void *>(free_aligned_sized_fn())},
      {"cfree", reinterpret_cast<void *>(cfree_fn())},
      {"__libc_malloc", reinterpret_cast<void *>(&__libc_malloc)},
      {"__libc_free", reinterpret_cast<void *>(&__libc_free)},
      {"__libc_calloc", reinterpret_cast<void *>(&__libc_calloc)},
      {"__libc_realloc", reinterpret_cast<void *>(&__libc_realloc)},
      {"__libc_memalign", reinterpret_cast<void *>(&__libc_memalign)},
      {"_Znwm", reinterpret_cast<void *>(static_cast<void *(*)(size_t)>(&::operator new))},
      {"_Znam", reinterpret_cast<void *>(static_cast<void *(*)(size_t)>(&::operator new[]))},
      {"_ZnwmRKSt9nothrow_t",
       reinterpret_cast<void *>(static_cast<void *(*)(size_t, const nothrow_t &) noexcept>(&::operator new))},
      {"_ZnamRKSt9nothrow_t",
       reinterpret_cast<void *>(static_cast<void *(*)(size_t, const nothrow_t &) noexcept>(&::operator new[]))},
      {"_ZnwmSt11align_val_t", reinterpret_cast<void *>(static_cast<void *(*)(size_t, align_val_t)>(&::operator new))},
      {"_ZnamSt11align_val_t",
       reinterpret_cast<void *>(static_cast<void *(*)(size_t, align_val_t)>(&::operator new[]))},
      {"_ZnwmSt11align_val_tRKSt9nothrow_t",
       reinterpret_cast<void *>(
           static_cast<void *(*)(size_t, align_val_t, const nothrow_t &) noexcept>(&::operator new))},
      {"_ZnamSt11align_val_tRKSt9nothrow_t",
       reinterpret_cast<void *>(
           static_cast<void *(*)(size_t, align_val_t, const nothrow_t &) noexcept>(&::operator new[]))},
      {"_ZdlPv", reinterpret_cast<void *>(static_cast<void (*)(void *) noexcept>(&::operator delete))},
      {"_ZdaPv", reinterpret_cast<void *>(static_cast<void (*)(void *) noexcept>(&::operator delete[]))},
      {"_ZdlPvm", reinterpret_cast<void *>(static_cast<void (*)(void *, size_t) noexcept>(&::operator delete))},
      {"_ZdaPvm", reinterpret_cast<void *>(static_cast<void (*)(void *, size_t) noexcept>(&::operator delete[]))},
      {"_ZdlPvRKSt9nothrow_t",
       reinterpret_cast<void *>(static_cast<void (*)(void *, const nothrow_t &) noexcept>(&::operator delete))},
      {"_ZdaPvRKSt9nothrow_t",
       reinterpret_cast<void *>(static_cast<void (*)(void *, const nothrow_t &) noexcept>(&::operator delete[]))},
      {"_ZdlPvSt11align_val_t",
       reinterpret_cast<void *>(static_cast<void (*)(void *, align_val_t) noexcept>(&::operator delete))},
      {"_ZdaPvSt11align_val_t",
       reinterpret_cast<void *>(static_cast<void (*)(void *, align_val_t) noexcept>(&::operator delete[]))},
      {"_ZdlPvmSt11align_val_t",
       reinterpret_cast<void *>(static_cast<void (*)(void *, size_t, align_val_t) noexcept>(&::operator delete))},
      {"_ZdaPvmSt11align_val_t",
       reinterpret_cast<void *>(static_cast<void (*)(void *, size_t, align_val_t) noexcept>(&::operator delete[]))},
      {"_ZdlPvSt11align_val_tRKSt9nothrow_t",
       reinterpret_cast<void *>(
           static_cast<void (*)(void *, align_val_t, const nothrow_t &) noexcept>(&::operator delete))},
      {"_ZdaPvSt11align_val_tRKSt9nothrow_t",
       reinterpret_cast<void *>(
           static_cast<void (*)(void *, align_val_t, const nothrow_t &) noexcept>(&::operator delete[]))},
  };
  for (const Entry &e : entries) {
    void *fn = resolve(e.name, e.linked);
    EXPECT_TRUE(provided_by_spanalloc(fn))
        << e.name << " is not spanalloc's (resolves to " << fn << " in '" << defining_object(fn) << "')";
    // What shared libraries (libc, libstdc++, dlopened code) bind to: in the
    // linked build, any name the C or C++ library also defines must resolve
    // to the executable's definition, or their calls would bypass spanalloc.
    if (kLinked) {
      void *dyn = dlsym(RTLD_DEFAULT, e.name);
      if (dyn != nullptr) {
        EXPECT_TRUE(provided_by_spanalloc(dyn))
            << e.name << ": shared libraries bind to '" << defining_object(dyn) << "', not to spanalloc";
      }
    }
  }
}

TEST(Conformance, MallocAllSizes) {
  for (size_t n : all_sizes()) {
    void *p = malloc(opaque_size(n));
    check_block(p, n, min_malloc_alignment(n), "malloc");
    free(p);
  }
}

TEST(Conformance, MallocZeroReturnsFreeableUniqueBlocks) {
  void *a = malloc(opaque_size(0));
  void *b = malloc(opaque_size(0));
  if (a && b) {
    EXPECT_NE(a, b) << "two live malloc(0) blocks share an address";
  }
  free(a);
  free(b);
}

TEST(Conformance, FreeNullIsNoOp) {
  free(nullptr);
  ::operator delete(static_cast<void *>(nullptr));
  ::operator delete[](static_cast<void *>(nullptr));
  if (auto fs = free_sized_fn()) fs(nullptr, 0);
  if (auto fa = free_aligned_sized_fn()) fa(nullptr, 64, 0);
  if (auto cf = cfree_fn()) cf(nullptr);
  __libc_free(nullptr);
  SUCCEED();
}

TEST(Conformance, UsableSizeAtLeastRequestedAndWritable) {
  EXPECT_EQ(malloc_usable_size(nullptr), 0u);
  // Keep blocks live while writing their usable size fully, so writing past
  // the request into the slack cannot touch a neighbour.
  std::vector<std::pair<void *, size_t>> live;
  Rng rng(7);
  for (int i = 0; i < 4000; ++i) {
    size_t n = 1 + rng.below(i % 10 == 0 ? 200000 : 2048);
    void *p = malloc(opaque_size(n));
    ASSERT_NE(p, nullptr);
    size_t u = malloc_usable_size(p);
    ASSERT_GE(u, n);
    fill_pattern(p, u, 1);
    live.emplace_back(p, u);
  }
  for (auto &[p, u] : live) {
    ASSERT_EQ(check_pattern(p, u, 1), SIZE_MAX) << "usable bytes of " << p << " overwritten by a neighbour";
    ASSERT_EQ(malloc_usable_size(p), u) << "usable size of a live block changed";
    free(p);
  }
}

TEST(Conformance, CallocAllSizesZeroed) {
  for (size_t n : all_sizes()) {
    unsigned char *p = static_cast<unsigned char *>(calloc(1, opaque_size(n)));
    ASSERT_NE(p, nullptr) << n;
    ASSERT_TRUE(is_aligned(p, min_malloc_alignment(n)));
    size_t u = malloc_usable_size(p);
    ASSERT_GE(u, n);
    ASSERT_EQ(first_nonzero(p, n), SIZE_MAX) << "calloc(1, " << n << ")";
    free(p);
  }
  // count * size with both factors above one.
  int *q = static_cast<int *>(calloc(opaque_size(1000), sizeof(int)));
  ASSERT_NE(q, nullptr);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(q[i], 0);
  free(q);
}

// Memory that was dirtied and freed comes back zeroed from calloc.
TEST(Conformance, CallocZeroesReusedMemory) {
  std::vector<size_t> sizes = {8, 16, 24, 48, 100, 256, 1000, 4096, 8192, 20000, 32768,
                               32769, 65536, 300000, kMiB, 4 * kMiB + 5, 16 * kMiB};
  for (size_t n : sizes) {
    const int count = n <= 32768 ? 256 : 4;
    std::vector<void *> v;
    for (int i = 0; i < count; ++i) {
      void *p = malloc(opaque_size(n));
      ASSERT_NE(p, nullptr);
      memset(p, 0xA5, malloc_usable_size(p));
      v.push_back(p);
    }
    for (void *p : v) free(p);
    v.clear();
    for (int i = 0; i < count; ++i) {
      unsigned char *p = static_cast<unsigned char *>(calloc(opaque_size(n), 1));
      ASSERT_NE(p, nullptr);
      ASSERT_EQ(first_nonzero(p, n), SIZE_MAX) << "calloc(" << n << ", 1) of reused memory not zeroed";
      v.push_back(p);
    }
    for (void *p : v) free(p);
  }
}

TEST(Conformance, ReallocKeepsContentsSmallLargeSmall) {
  const std::vector<std::vector<size_t>> paths = {
      {1, 2, 3, 8, 9, 16, 17, 100, 1000, 4096, 20000, 32768, 32769, 100000, kMiB, 8 * kMiB, 64 * kMiB,
       8 * kMiB + 3, 200000, 32769, 32768, 5000, 100, 7, 1},
      {24, 40000, 24, 2 * kMiB, 48, 64 * kMiB, 33},
      {32768, 32769, 32767, 32770, 16384, 65536, 8},
  };
  uint64_t tag = 0;
  for (const auto &path : paths) {
    ++tag;
    size_t cur = path[0];
    unsigned char *p = static_cast<unsigned char *>(malloc(opaque_size(cur)));
    ASSERT_NE(p, nullptr);
    fill_seq(p, 0, cur, tag);
    for (size_t k = 1; k < path.size(); ++k) {
      size_t next = path[k];
      unsigned char *q = static_cast<unsigned char *>(realloc(p, opaque_size(next)));
      ASSERT_NE(q, nullptr) << "realloc " << cur << " -> " << next;
      ASSERT_TRUE(is_aligned(q, min_malloc_alignment(next)));
      ASSERT_GE(malloc_usable_size(q), next);
      size_t keep = std::min(cur, next);
      ASSERT_EQ(check_seq(q, 0, keep, tag), SIZE_MAX) << "realloc " << cur << " -> " << next << " lost contents";
      if (next > cur) fill_seq(q, cur, next, tag);
      p = q;
      cur = next;
    }
    free(p);
  }
}

TEST(Conformance, ReallocNullIsMalloc) {
  void *p = realloc(nullptr, opaque_size(100));
  check_block(p, 100, 16, "realloc(NULL)");
  free(p);
  p = realloc(nullptr, opaque_size(3 * kMiB));
  check_block(p, 3 * kMiB, 16, "realloc(NULL)");
  free(p);
}

TEST(Conformance, ReallocToZero) {
  // glibc frees and returns NULL; returning a minimal block is also allowed.
  void *p = malloc(opaque_size(100));
  ASSERT_NE(p, nullptr);
  void *q = realloc(p, opaque_size(0));
  free(q);
  SUCCEED();
}

TEST(Conformance, ReallocRandomWalkKeepsContents) {
  Rng rng(11);
  constexpr int kSlots = 64;
  unsigned char *p[kSlots] = {};
  size_t len[kSlots] = {};
  for (int step = 0; step < 6000; ++step) {
    int i = static_cast<int>(rng.below(kSlots));
    size_t n;
    switch (rng.below(4)) {
      case 0: n = 1 + rng.below(64); break;
      case 1: n = 1 + rng.below(4096); break;
      case 2: n = 1 + rng.below(70000); break;
      default: n = 1 + rng.below(step % 50 == 0 ? 3 * kMiB : 300000); break;
    }
    unsigned char *q = static_cast<unsigned char *>(realloc(p[i], opaque_size(n)));
    ASSERT_NE(q, nullptr);
    ASSERT_EQ(check_seq(q, 0, std::min(len[i], n), i + 100), SIZE_MAX) << "step " << step;
    if (n > len[i]) fill_seq(q, len[i], n, i + 100);
    p[i] = q;
    len[i] = n;
  }
  for (int i = 0; i < kSlots; ++i) {
    ASSERT_EQ(check_seq(p[i], 0, len[i], i + 100), SIZE_MAX);
    free(p[i]);
  }
}

TEST(Conformance, ReallocArray) {
  int *a = static_cast<int *>(reallocarray(nullptr, opaque_size(10), sizeof(int)));
  ASSERT_NE(a, nullptr);
  for (int i = 0; i < 10; ++i) a[i] = i * 7;
  a = static_cast<int *>(reallocarray(a, opaque_size(100000), sizeof(int)));
  ASSERT_NE(a, nullptr);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(a[i], i * 7);
  for (int i = 10; i < 100000; ++i) a[i] = i;
  a = static_cast<int *>(reallocarray(a, opaque_size(5), sizeof(int)));
  ASSERT_NE(a, nullptr);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(a[i], i * 7);
  ASSERT_GE(malloc_usable_size(a), 5 * sizeof(int));
  free(a);
}

// Thousands of live blocks of all sizes never overlap, and no write into one
// block (its whole usable size) shows up in another.
TEST(Conformance, LiveBlocksNeverOverlap) {
  struct Block {
    uintptr_t begin, end;
    void *p;
  };
  Rng rng(3);
  std::vector<Block> live;
  auto alloc_some = [&](int count) {
    for (int i = 0; i < count; ++i) {
      size_t r = rng.below(1000), n;
      if (r < 700) n = 1 + rng.below(256);
      else if (r < 950) n = 257 + rng.below(32 * kKiB);
      else if (r < 995) n = 32 * kKiB + rng.below(512 * kKiB);
      else n = kMiB + rng.below(3 * kMiB);
      void *p;
      switch (rng.below(4)) {
        case 0: p = calloc(1, opaque_size(n)); break;
        case 1: p = aligned_alloc(size_t{64} << rng.below(6), opaque_size(n)); break;
        default: p = malloc(opaque_size(n)); break;
      }
      ASSERT_NE(p, nullptr);
      size_t u = malloc_usable_size(p);
      ASSERT_GE(u, n);
      fill_pattern(p, u, 9);
      live.push_back({reinterpret_cast<uintptr_t>(p), reinterpret_cast<uintptr_t>(p) + u, p});
    }
  };
  auto check_all = [&] {
    std::vector<Block> sorted = live;
    std::sort(sorted.begin(), sorted.end(), [](const Block &a, const Block &b) { return a.begin < b.begin; });
    for (size_t i = 1; i < sorted.size(); ++i)
      ASSERT_LE(sorted[i - 1].end, sorted[i].begin)
          << "live blocks overlap: [" << sorted[i - 1].p << ", +" << sorted[i - 1].end - sorted[i - 1].begin
          << ") and " << sorted[i].p;
    for (const Block &b : live) ASSERT_EQ(check_pattern(b.p, b.end - b.begin, 9), SIZE_MAX) << b.p;
  };
  alloc_some(12000);
  check_all();
  // Free a random half, allocate again: reused memory must not overlap either.
  for (size_t i = 0; i < live.size();) {
    if (rng.below(2)) {
      free(live[i].p);
      live[i] = live.back();
      live.pop_back();
    } else {
      ++i;
    }
  }
  alloc_some(8000);
  check_all();
  for (const Block &b : live) free(b.p);
}

TEST(Conformance, PosixMemalignAllAlignments) {
  for (size_t a : alignments()) {
    for (size_t n : {size_t{1}, a - 1, a, a + 1, 3 * a, size_t{100000}, size_t{33000}}) {
      if (n == 0) continue;
      void *p = reinterpret_cast<void *>(0x1);
      ASSERT_EQ(posix_memalign(&p, a, opaque_size(n)), 0) << a << " " << n;
      check_block(p, n, a, "posix_memalign");
      free(p);
    }
  }
}

TEST(Conformance, LargeAlignedLargeBlocks) {
  for (size_t a : {size_t{4096}, 64 * kKiB, kMiB}) {
    for (size_t n : {64 * kMiB, 3 * kMiB + 1}) {
      void *p = nullptr;
      ASSERT_EQ(posix_memalign(&p, a, opaque_size(n)), 0) << a << " " << n;
      check_block(p, n, a, "posix_memalign");
      free(p);
    }
  }
}

TEST(Conformance, MillionsOfSmallObjectsLive) {
  constexpr size_t kCount = 3'000'000;
  std::vector<uint64_t *> v(kCount);
  Rng rng(12);
  for (size_t i = 0; i < kCount; ++i) {
    size_t n = 8 * (1 + rng.below(8));  // 8..64 bytes
    v[i] = static_cast<uint64_t *>(malloc(opaque_size(n)));
    ASSERT_NE(v[i], nullptr);
    v[i][0] = i * 0x9E3779B97F4A7C15ull;
  }
  for (size_t i = 0; i < kCount; ++i) ASSERT_EQ(v[i][0], i * 0x9E3779B97F4A7C15ull) << "object " << i;
  // Free in a scrambled order.
  for (size_t i = kCount - 1; i > 0; --i) std::swap(v[i], v[rng.below(i + 1)]);
  for (uint64_t *p : v) free(p);
}

TEST(Conformance, AlignedAllocAllAlignments) {
  for (size_t a : alignments()) {
    for (size_t n : {a, 2 * a, 5 * a, size_t{1}, a + 8}) {
      void *p = aligned_alloc(a, opaque_size(n));
      check_block(p, n, a, "aligned_alloc");
      free(p);
    }
  }
  // Alignments below the pointer size are valid for aligned_alloc and memalign.
  for (size_t a : {1, 2, 4}) {
    void *p = aligned_alloc(a, opaque_size(10));
    check_block(p, 10, a, "aligned_alloc");
    free(p);
    p = memalign(a, opaque_size(10));
    check_block(p, 10, a, "memalign");
    free(p);
  }
}

TEST(Conformance, MemalignAllAlignments) {
  for (size_t a : alignments()) {
    for (size_t n : {size_t{1}, a, a + 1, size_t{40000}}) {
      void *p = memalign(a, opaque_size(n));
      check_block(p, n, a, "memalign");
      free(p);
    }
  }
}

// Many aligned blocks live at once: aligned, disjoint, contents intact.
TEST(Conformance, AlignedBlocksLiveTogether) {
  std::vector<std::pair<void *, size_t>> live;
  Rng rng(5);
  for (int i = 0; i < 600; ++i) {
    size_t a = size_t{8} << rng.below(i % 20 == 0 ? 18 : 10);  // 8 B .. 1 MiB
    size_t n = 1 + rng.below(i % 20 == 0 ? 200000 : 3000);
    void *p = nullptr;
    ASSERT_EQ(posix_memalign(&p, a, opaque_size(n)), 0);
    ASSERT_TRUE(is_aligned(p, a)) << p << " " << a;
    size_t u = malloc_usable_size(p);
    ASSERT_GE(u, n);
    fill_pattern(p, u, 4);
    live.emplace_back(p, u);
  }
  for (auto &[p, u] : live) ASSERT_EQ(check_pattern(p, u, 4), SIZE_MAX) << p;
  for (auto &[p, u] : live) free(p);
}

// realloc of blocks from the aligned functions keeps contents (the result
// need only have malloc's alignment).
TEST(Conformance, ReallocOfAlignedBlocksKeepsContents) {
  for (size_t a : alignments()) {
    for (size_t n : {a / 2 + 1, a, 3 * a + 5}) {
      void *p = nullptr;
      ASSERT_EQ(posix_memalign(&p, a, opaque_size(n)), 0);
      fill_seq(p, 0, n, a);
      for (size_t m : {n * 2 + 1, n / 3 + 1, size_t{100000}, n}) {
        void *q = realloc(p, opaque_size(m));
        ASSERT_NE(q, nullptr);
        ASSERT_EQ(check_seq(q, 0, std::min(n, m), a), SIZE_MAX) << "align " << a << " " << n << " -> " << m;
        if (m > n) fill_seq(q, n, m, a);
        p = q;
        n = m;
      }
      free(p);
    }
  }
}

TEST(Conformance, VallocAndPvallocArePageAligned) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (size_t n : {size_t{1}, size_t{100}, page - 1, page, page + 1, size_t{100000}, 3 * kMiB}) {
    void *p = valloc(opaque_size(n));
    check_block(p, n, page, "valloc");
    free(p);
    void *q = pvalloc(opaque_size(n));
    size_t rounded = (n + page - 1) / page * page;
    check_block(q, rounded, page, "pvalloc");  // pvalloc rounds the size up to whole pages
    free(q);
  }
  void *z = pvalloc(opaque_size(0));
  if (z) {
    EXPECT_TRUE(is_aligned(z, page));
    free(z);
  }
}

TEST(Conformance, FreeSizedAndFreeAlignedSized) {
  const FreeSizedFn free_sized = free_sized_fn();
  const FreeAlignedSizedFn free_aligned_sized = free_aligned_sized_fn();
  ASSERT_NE(free_sized, nullptr) << "free_sized is not defined";
  ASSERT_NE(free_aligned_sized, nullptr) << "free_aligned_sized is not defined";
  for (int round = 0; round < 3; ++round) {
    for (size_t n : all_sizes()) {
      if (n > 8 * kMiB) continue;
      void *p = malloc(opaque_size(n));
      ASSERT_NE(p, nullptr);
      memset(p, 0x5a, n);
      free_sized(p, n);
    }
  }
  for (size_t a : alignments()) {
    for (size_t n : {a, 3 * a}) {
      void *p = aligned_alloc(a, opaque_size(n));
      check_block(p, n, a, "aligned_alloc");
      free_aligned_sized(p, a, n);
    }
  }
  // The freed memory is reused sanely afterwards.
  void *p = malloc(opaque_size(64));
  check_block(p, 64, 16, "malloc");
  free(p);
}

TEST(Conformance, Cfree) {
  const CfreeFn cfree = cfree_fn();
  ASSERT_NE(cfree, nullptr) << "cfree is not defined";
  for (size_t n : {1ul, 100ul, 5000ul, 40000ul, 2 * kMiB}) {
    void *p = malloc(opaque_size(n));
    check_block(p, n, min_malloc_alignment(n), "malloc");
    cfree(p);
  }
}

TEST(Conformance, LibcAliases) {
  for (size_t n : {1ul, 24ul, 1000ul, 32768ul, 50000ul, 5 * kMiB}) {
    void *p = __libc_malloc(opaque_size(n));
    check_block(p, n, min_malloc_alignment(n), "__libc_malloc");
    unsigned char *q = static_cast<unsigned char *>(__libc_realloc(p, opaque_size(2 * n)));
    ASSERT_NE(q, nullptr);
    ASSERT_GE(malloc_usable_size(q), 2 * n);
    __libc_free(q);

    unsigned char *z = static_cast<unsigned char *>(__libc_calloc(opaque_size(n), 1));
    ASSERT_NE(z, nullptr);
    ASSERT_EQ(first_nonzero(z, n), SIZE_MAX) << "__libc_calloc(" << n << ")";
    free(z);  // aliases and the plain names share one heap

    void *m = __libc_memalign(4096, opaque_size(n));
    check_block(m, n, 4096, "__libc_memalign");
    __libc_free(m);

    void *plain = malloc(opaque_size(n));
    ASSERT_NE(plain, nullptr);
    __libc_free(plain);
  }
  // Contents across __libc_realloc.
  unsigned char *r = static_cast<unsigned char *>(__libc_malloc(opaque_size(100)));
  ASSERT_NE(r, nullptr);
  fill_seq(r, 0, 100, 77);
  r = static_cast<unsigned char *>(__libc_realloc(r, opaque_size(200000)));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(check_seq(r, 0, 100, 77), SIZE_MAX);
  __libc_free(r);
}

TEST(Conformance, MallocInfoFunctionsIfPresent) {
  std::vector<void *> v;
  for (int i = 0; i < 1000; ++i) v.push_back(malloc(opaque_size(100 + i)));
  struct mallinfo2 mi = mallinfo2();
  escape(&mi);
  EXPECT_GE(malloc_trim(0), 0);
  for (void *p : v) free(p);
  EXPECT_GE(malloc_trim(0), 0);
  // malloc_stats writes to stderr; it must simply not crash or deadlock.
  malloc_stats();
  // The allocator still works afterwards.
  void *p = malloc(opaque_size(77));
  check_block(p, 77, 16, "malloc");
  free(p);
}

namespace {
struct alignas(64) Line64 {
  char b[64];
};
struct alignas(4096) Page4K {
  char b[4096];
};
struct Counted {
  static int live;
  int v;
  Counted() : v(42) { ++live; }
  ~Counted() { --live; }
};
int Counted::live = 0;
}  // namespace

TEST(Conformance, OperatorNewDeleteAllForms) {
  for (size_t n : all_sizes()) {
    if (n > 8 * kMiB) continue;
    const size_t sz = opaque_size(n);
    void *p = ::operator new(sz);
    check_block(p, n, min_malloc_alignment(n), "operator new");
    ::operator delete(p);
    p = ::operator new[](sz);
    check_block(p, n, min_malloc_alignment(n), "operator new[]");
    ::operator delete[](p);
    p = ::operator new(sz);
    check_block(p, n, min_malloc_alignment(n), "operator new");
    ::operator delete(p, sz);
    p = ::operator new[](sz);
    check_block(p, n, min_malloc_alignment(n), "operator new[]");
    ::operator delete[](p, sz);
    p = ::operator new(sz, std::nothrow);
    check_block(p, n, min_malloc_alignment(n), "operator new(nothrow)");
    ::operator delete(p, std::nothrow);
    p = ::operator new[](sz, std::nothrow);
    check_block(p, n, min_malloc_alignment(n), "operator new[](nothrow)");
    ::operator delete[](p, std::nothrow);
  }
}

TEST(Conformance, OperatorNewAlignedAllForms) {
  for (size_t a : alignments()) {
    const std::align_val_t al{a};
    for (size_t n : {size_t{1}, a, a + 1, size_t{40000}}) {
      const size_t sz = opaque_size(n);
      void *p = ::operator new(sz, al);
      check_block(p, n, a, "operator new(align)");
      ::operator delete(p, al);
      p = ::operator new[](sz, al);
      check_block(p, n, a, "operator new[](align)");
      ::operator delete[](p, al);
      p = ::operator new(sz, al);
      check_block(p, n, a, "operator new(align)");
      ::operator delete(p, sz, al);
      p = ::operator new[](sz, al);
      check_block(p, n, a, "operator new[](align)");
      ::operator delete[](p, sz, al);
      p = ::operator new(sz, al, std::nothrow);
      check_block(p, n, a, "operator new(align, nothrow)");
      ::operator delete(p, al, std::nothrow);
      p = ::operator new[](sz, al, std::nothrow);
      check_block(p, n, a, "operator new[](align, nothrow)");
      ::operator delete[](p, al, std::nothrow);
    }
  }
}

TEST(Conformance, NewExpressions) {
  // Over-aligned types go through the align_val_t forms.
  for (int round = 0; round < 100; ++round) {
    Line64 *l = new Line64;
    Page4K *pg = new Page4K;
    Line64 *la = new Line64[opaque_size(17)];
    Page4K *pa = new Page4K[opaque_size(3)];
    ASSERT_TRUE(is_aligned(l, 64));
    ASSERT_TRUE(is_aligned(pg, 4096));
    ASSERT_TRUE(is_aligned(la, 64));
    ASSERT_TRUE(is_aligned(pa, 4096));
    memset(l, 1, sizeof *l);
    memset(pg, 2, sizeof *pg);
    memset(la, 3, 17 * sizeof *la);
    memset(pa, 4, 3 * sizeof *pa);
    delete l;
    delete pg;
    delete[] la;
    delete[] pa;
  }
  // Arrays with non-trivial destructors carry a cookie before the elements.
  Counted *c = new Counted[opaque_size(1000)];
  EXPECT_EQ(Counted::live, 1000);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(c[i].v, 42);
  delete[] c;
  EXPECT_EQ(Counted::live, 0);
  // Containers use the sized forms of delete.
  std::vector<std::vector<int>> vv;
  for (int i = 0; i < 2000; ++i) vv.emplace_back(static_cast<size_t>(i % 300), i);
  for (int i = 0; i < 2000; ++i)
    for (int x : vv[i]) ASSERT_EQ(x, i);
  std::string s;
  for (int i = 0; i < 100000; ++i) s += static_cast<char>('a' + i % 26);
  EXPECT_EQ(s[99999], 'a' + 99999 % 26);
}

// malloc'd memory and new'd memory come from one heap: a pattern of mixed
// interleaved allocations and frees leaves everything intact.
TEST(Conformance, MixedInterfacesInterleaved) {
  struct Obj {
    void *p;
    size_t n;
    int kind;
  };
  Rng rng(21);
  const FreeSizedFn free_sized = free_sized_fn();
  std::vector<Obj> live;
  for (int step = 0; step < 30000; ++step) {
    if (!live.empty() && rng.below(100) < 45) {
      size_t i = rng.below(live.size());
      Obj o = live[i];
      live[i] = live.back();
      live.pop_back();
      ASSERT_EQ(check_pattern(o.p, o.n, o.kind), SIZE_MAX) << "kind " << o.kind << " size " << o.n;
      switch (o.kind) {
        case 0: free(o.p); break;
        case 1: ::operator delete(o.p, o.n); break;
        case 2: ::operator delete[](o.p); break;
        case 3: ::operator delete(o.p, std::align_val_t{256}); break;
        case 4: free_sized ? free_sized(o.p, o.n) : free(o.p); break;
        default: free(o.p); break;
      }
      continue;
    }
    size_t n = 1 + rng.below(rng.below(10) == 0 ? 100000 : 600);
    int kind = static_cast<int>(rng.below(6));
    void *p = nullptr;
    switch (kind) {
      case 0: p = malloc(n); break;
      case 1: p = ::operator new(n); break;
      case 2: p = ::operator new[](n); break;
      case 3: p = ::operator new(n, std::align_val_t{256}); break;
      case 4: p = calloc(n, 1); break;
      default: ASSERT_EQ(posix_memalign(&p, 32, n), 0); break;
    }
    ASSERT_NE(p, nullptr);
    fill_pattern(p, n, kind);
    live.push_back({p, n, kind});
  }
  for (const Obj &o : live) {
    ASSERT_EQ(check_pattern(o.p, o.n, o.kind), SIZE_MAX);
    if (o.kind == 3) ::operator delete(o.p, std::align_val_t{256});
    else if (o.kind == 1) ::operator delete(o.p);
    else if (o.kind == 2) ::operator delete[](o.p);
    else free(o.p);
  }
}
