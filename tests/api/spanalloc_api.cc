// The spanalloc_* interface of include/spanalloc.h, seen from outside: the
// same heap as malloc/free, statistics that follow allocations, a report,
// and an explicit release of free memory to the OS. In the preloaded build
// the functions are looked up in libspanalloc.so with dlsym.
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "api_common.h"

using namespace api;

namespace {

struct Api {
  void *(*malloc_)(size_t);
  void (*free_)(void *);
  void *(*calloc_)(size_t, size_t);
  void *(*realloc_)(void *, size_t);
  void *(*aligned_alloc_)(size_t, size_t);
  int (*posix_memalign_)(void **, size_t, size_t);
  void (*free_sized_)(void *, size_t);
  size_t (*usable_size_)(const void *);
  int (*get_stats_)(spanalloc_stats *);
  void (*print_report_)(int);
  size_t (*release_free_memory_)(void);
};

#if SPANALLOC_API_LINKED
#define API_FN(name) &name
#else
#define API_FN(name) reinterpret_cast<decltype(&name)>(dlsym(RTLD_DEFAULT, #name))
#endif

Api load() {
  return Api{API_FN(spanalloc_malloc),         API_FN(spanalloc_free),
             API_FN(spanalloc_calloc),         API_FN(spanalloc_realloc),
             API_FN(spanalloc_aligned_alloc),  API_FN(spanalloc_posix_memalign),
             API_FN(spanalloc_free_sized),     API_FN(spanalloc_usable_size),
             API_FN(spanalloc_get_stats),      API_FN(spanalloc_print_report),
             API_FN(spanalloc_release_free_memory)};
}

#define REQUIRE_API(api)                                                                          \
  do {                                                                                            \
    ASSERT_TRUE((api).malloc_ && (api).free_ && (api).calloc_ && (api).realloc_ &&                \
                (api).aligned_alloc_ && (api).posix_memalign_ && (api).free_sized_ &&             \
                (api).usable_size_ && (api).get_stats_ && (api).print_report_ &&                  \
                (api).release_free_memory_)                                                       \
        << "a spanalloc_* function is not exported";                                              \
  } while (0)

}  // namespace

TEST(SpanallocApi, FunctionsShareTheHeapWithMalloc) {
  Api a = load();
  REQUIRE_API(a);
  for (size_t n : {1ul, 8ul, 100ul, 1024ul, 5000ul, 32768ul, 32769ul, 300000ul, 5 * kMiB}) {
    void *p = a.malloc_(opaque_size(n));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(is_aligned(p, min_malloc_alignment(n)));
    ASSERT_GE(a.usable_size_(p), n);
    EXPECT_EQ(a.usable_size_(p), malloc_usable_size(p));
    fill_pattern(p, a.usable_size_(p), 1);
    EXPECT_EQ(check_pattern(p, a.usable_size_(p), 1), SIZE_MAX);
    free(p);  // spanalloc_malloc -> free
    void *q = malloc(opaque_size(n));
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(a.usable_size_(q), malloc_usable_size(q));
    a.free_(q);  // malloc -> spanalloc_free
    unsigned char *z = static_cast<unsigned char *>(a.calloc_(opaque_size(n), 1));
    ASSERT_NE(z, nullptr);
    EXPECT_EQ(first_nonzero(z, n), SIZE_MAX);
    fill_seq(z, 0, n, 2);
    z = static_cast<unsigned char *>(a.realloc_(z, opaque_size(2 * n + 10)));
    ASSERT_NE(z, nullptr);
    EXPECT_EQ(check_seq(z, 0, n, 2), SIZE_MAX);
    a.free_sized_(z, 2 * n + 10);
  }
  for (size_t al = 8; al <= kMiB; al *= 4) {
    void *p = a.aligned_alloc_(al, opaque_size(3 * al));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(is_aligned(p, al));
    memset(p, 1, 3 * al);
    a.free_(p);
    void *out = nullptr;
    ASSERT_EQ(a.posix_memalign_(&out, al, opaque_size(al + 1)), 0);
    EXPECT_TRUE(is_aligned(out, al));
    free(out);
  }
  void *untouched = reinterpret_cast<void *>(0x1230);
  EXPECT_EQ(a.posix_memalign_(&untouched, 24, 100), EINVAL);
  EXPECT_EQ(untouched, reinterpret_cast<void *>(0x1230));
  errno = 0;
  EXPECT_EQ(a.malloc_(opaque_size(SIZE_MAX)), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(a.calloc_(opaque_size(SIZE_MAX / 2 + 1), 2), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  a.free_(nullptr);
  EXPECT_EQ(a.usable_size_(nullptr), 0u);
}

TEST(SpanallocApi, StatisticsFollowAllocations) {
  Api a = load();
  REQUIRE_API(a);
  spanalloc_stats s0{}, s1{}, s2{};
  ASSERT_EQ(a.get_stats_(&s0), 0);
  std::vector<void *> big;
  for (int i = 0; i < 8; ++i) {
    void *p = malloc(opaque_size(2 * kMiB));
    ASSERT_NE(p, nullptr);
    memset(p, 3, 2 * kMiB);
    big.push_back(p);
  }
  ASSERT_EQ(a.get_stats_(&s1), 0);
  EXPECT_GE(s1.in_use_large, s0.in_use_large + 16 * kMiB);
  EXPECT_GE(s1.mapped, s1.in_use_large + s1.in_use_small);
  EXPECT_LE(s1.committed, s1.mapped);
  EXPECT_LE(s1.released, s1.mapped);
  EXPECT_GE(s1.os_maps, 1u);
  EXPECT_GE(s1.thread_caches, 1u) << "this thread allocated, so it has a cache";
  EXPECT_GT(s1.metadata, 0u);
  for (void *p : big) free(p);
  ASSERT_EQ(a.get_stats_(&s2), 0);
  EXPECT_LE(s2.in_use_large + 16 * kMiB, s1.in_use_large + kMiB) << "freed large blocks still counted in use";
  EXPECT_GE(s2.page_heap_free + s2.released, s1.page_heap_free + s1.released)
      << "freed large spans went neither to the page heap nor to the OS";
}

TEST(SpanallocApi, ReleaseFreeMemoryGivesMemoryBackAndReuseWorks) {
  Api a = load();
  REQUIRE_API(a);
  constexpr int kBlocks = 48;
  std::vector<void *> v;
  for (int i = 0; i < kBlocks; ++i) {
    void *p = malloc(opaque_size(kMiB + 8 * kKiB));
    ASSERT_NE(p, nullptr);
    memset(p, 0xEE, kMiB + 8 * kKiB);
    v.push_back(p);
  }
  const size_t rss_peak = rss_bytes();
  for (void *p : v) free(p);
  v.clear();
  const size_t released = a.release_free_memory_();
  const size_t rss_after = rss_bytes();
  spanalloc_stats s{};
  ASSERT_EQ(a.get_stats_(&s), 0);
  EXPECT_LT(rss_after + 32 * kMiB, rss_peak)
      << "RSS " << rss_peak / kKiB << " KiB -> " << rss_after / kKiB << " KiB after freeing 48 MiB and releasing "
      << released << " bytes";
  EXPECT_GE(s.released, 32 * kMiB);
  EXPECT_GE(s.os_releases, 1u);
  EXPECT_LE(a.release_free_memory_(), kMiB) << "a second release right after the first found much more to release";
  // Released memory comes back usable: zeroed for calloc, writable for malloc.
  for (int i = 0; i < kBlocks; ++i) {
    void *p = (i % 2) ? calloc(1, opaque_size(kMiB + 8 * kKiB)) : malloc(opaque_size(kMiB + 8 * kKiB));
    ASSERT_NE(p, nullptr);
    if (i % 2) {
      ASSERT_EQ(first_nonzero(p, kMiB + 8 * kKiB), SIZE_MAX) << "calloc of released memory not zero";
    }
    fill_pattern(p, kMiB + 8 * kKiB, 7);
    v.push_back(p);
  }
  for (void *p : v) {
    ASSERT_EQ(check_pattern(p, kMiB + 8 * kKiB, 7), SIZE_MAX);
    free(p);
  }
  v.clear();
  // Small objects after a release.
  for (int i = 0; i < 10000; ++i) v.push_back(calloc(1, opaque_size(48)));
  for (void *p : v) {
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(first_nonzero(p, 48), SIZE_MAX);
  }
  a.release_free_memory_();
  for (void *p : v) free(p);
}

TEST(SpanallocApi, PrintReportWritesReadableText) {
  Api a = load();
  REQUIRE_API(a);
  void *keep = malloc(opaque_size(3 * kMiB));
  ASSERT_NE(keep, nullptr);
  FILE *f = tmpfile();
  ASSERT_NE(f, nullptr);
  a.print_report_(fileno(f));
  fflush(f);
  std::string text;
  rewind(f);
  char buf[4096];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, got);
  fclose(f);
  free(keep);
  ASSERT_GT(text.size(), 40u) << "empty report";
  EXPECT_EQ(text.back(), '\n');
  for (char c : text) ASSERT_TRUE(c == '\n' || (c >= 32 && c < 127)) << "non-text byte in the report";
  EXPECT_NE(text.find("spanalloc"), std::string::npos);
}
