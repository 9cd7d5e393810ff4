// Helpers shared by the API suites, and the check, run in every test process,
// that the allocator under test really is spanalloc.
#include "api_common.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <gtest/gtest.h>

namespace api {

namespace {
inline uint64_t mix(uint64_t x) {
  x ^= x >> 31;
  x *= 0x7fb5d329728ea185ull;
  x ^= x >> 27;
  x *= 0x81dadef4bc2dd44dull;
  x ^= x >> 33;
  return x;
}
inline uint8_t byte_at(uint64_t base, size_t i) { return static_cast<uint8_t>(mix(base + i / 8) >> (8 * (i % 8))); }
}  // namespace

void fill_pattern(void *p, size_t n, uint64_t tag) {
  const uint64_t base = mix(reinterpret_cast<uintptr_t>(p) ^ (n << 1) ^ (tag << 40));
  unsigned char *b = static_cast<unsigned char *>(p);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = mix(base + i / 8);
    memcpy(b + i, &w, 8);
  }
  for (; i < n; ++i) b[i] = byte_at(base, i);
}

size_t check_pattern(const void *p, size_t n, uint64_t tag) {
  const uint64_t base = mix(reinterpret_cast<uintptr_t>(p) ^ (n << 1) ^ (tag << 40));
  const unsigned char *b = static_cast<const unsigned char *>(p);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, b + i, 8);
    if (w != mix(base + i / 8)) {
      for (size_t j = i; j < i + 8; ++j)
        if (b[j] != byte_at(base, j)) return j;
    }
  }
  for (; i < n; ++i)
    if (b[i] != byte_at(base, i)) return i;
  return SIZE_MAX;
}

void fill_seq(void *p, size_t from, size_t to, uint64_t tag) {
  unsigned char *b = static_cast<unsigned char *>(p);
  const uint64_t base = mix(tag);
  for (size_t i = from; i < to; ++i) b[i] = byte_at(base, i);
}

size_t check_seq(const void *p, size_t from, size_t to, uint64_t tag) {
  const unsigned char *b = static_cast<const unsigned char *>(p);
  const uint64_t base = mix(tag);
  for (size_t i = from; i < to; ++i)
    if (b[i] != byte_at(base, i)) return i;
  return SIZE_MAX;
}

bool spanalloc_mapped() {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return false;
  char line[4096];
  bool found = false;
  while (fgets(line, sizeof line, f))
    if (strstr(line, "libspanalloc")) found = true;
  fclose(f);
  return found;
}

std::string defining_object(const void *fn) {
  Dl_info info{};
  if (!fn || !dladdr(fn, &info) || !info.dli_fname) return "";
  return info.dli_fname;
}

bool provided_by_spanalloc(const void *fn) {
  if (!fn) return false;
  Dl_info info{}, self{};
  if (!dladdr(fn, &info)) return false;
  if (kLinked) {
    // The executable's own definition: same object as a function of this file.
    if (!dladdr(reinterpret_cast<const void *>(&rss_bytes), &self)) return false;
    return info.dli_fbase == self.dli_fbase;
  }
  return info.dli_fname && strstr(info.dli_fname, "libspanalloc") != nullptr;
}

void *resolve(const char *name, void *linked) {
  if (kLinked) return linked;
  return dlsym(RTLD_DEFAULT, name);
}

size_t first_nonzero(const void *p, size_t n) {
  const unsigned char *b = static_cast<const unsigned char *>(p);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, b + i, 8);
    if (w) break;
  }
  for (; i < n; ++i)
    if (b[i]) return i;
  return SIZE_MAX;
}

FreeSizedFn free_sized_fn() {
  return reinterpret_cast<FreeSizedFn>(resolve("free_sized", reinterpret_cast<void *>(&free_sized)));
}
FreeAlignedSizedFn free_aligned_sized_fn() {
  return reinterpret_cast<FreeAlignedSizedFn>(
      resolve("free_aligned_sized", reinterpret_cast<void *>(&free_aligned_sized)));
}
CfreeFn cfree_fn() { return reinterpret_cast<CfreeFn>(resolve("cfree", reinterpret_cast<void *>(&cfree))); }

StatsFn stats_fn() {
#if SPANALLOC_API_LINKED
  return &spanalloc_get_stats;
#else
  return reinterpret_cast<StatsFn>(dlsym(RTLD_DEFAULT, "spanalloc_get_stats"));
#endif
}

uint64_t in_use_bytes() {
  StatsFn f = stats_fn();
  if (!f) return 0;
  spanalloc_stats s{};
  if (f(&s) != 0) return 0;
  return s.in_use_small + s.in_use_large;
}

static size_t statm_field(int index) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long v[2] = {0, 0};
  int got = fscanf(f, "%lu %lu", &v[0], &v[1]);
  fclose(f);
  if (got != 2) return 0;
  return v[index] * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}
size_t rss_bytes() { return statm_field(1); }
size_t vm_bytes() { return statm_field(0); }

namespace {

// Fails every test of the process when the allocator in use is not spanalloc:
// a preloaded run without the preload, or a linked run where the C library's
// malloc still serves the program.
class SpanallocPresent : public ::testing::Environment {
 public:
  void SetUp() override {
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    if (kLinked) {
      EXPECT_TRUE(provided_by_spanalloc(m))
          << "linked build: malloc resolves to " << defining_object(m) << ", not the test executable";
    } else {
      EXPECT_TRUE(spanalloc_mapped()) << "preloaded build: libspanalloc is not in /proc/self/maps "
                                         "(run with LD_PRELOAD=.../libspanalloc.so)";
      EXPECT_TRUE(provided_by_spanalloc(m)) << "preloaded build: malloc resolves to " << defining_object(m);
    }
  }
};

#ifndef SPANALLOC_API_AGAINST_SYSTEM_MALLOC  // defined only by scratch runs of the suites against glibc
[[maybe_unused]] ::testing::Environment *const g_env = ::testing::AddGlobalTestEnvironment(new SpanallocPresent);
#endif

}  // namespace

// The explicit form of the same check, visible as a test of every binary.
TEST(ApiIdentity, AllocatorIsSpanalloc) {
  void *m = dlsym(RTLD_DEFAULT, "malloc");
  void *f = dlsym(RTLD_DEFAULT, "free");
  EXPECT_TRUE(provided_by_spanalloc(m)) << "malloc from " << defining_object(m);
  EXPECT_TRUE(provided_by_spanalloc(f)) << "free from " << defining_object(f);
  if (!kLinked) {
    EXPECT_TRUE(spanalloc_mapped());
    EXPECT_NE(getenv("LD_PRELOAD"), nullptr);
    return;
  }
  // Linked: the statistics see what malloc hands out.
  spanalloc_stats before{}, after{};
  ASSERT_EQ(spanalloc_get_stats(&before), 0);
  void *big = malloc(opaque_size(3 * kMiB));
  ASSERT_NE(big, nullptr);
  memset(big, 1, 3 * kMiB);
  ASSERT_EQ(spanalloc_get_stats(&after), 0);
  EXPECT_GE(after.in_use_large, before.in_use_large + 3 * kMiB);
  EXPECT_GE(after.mapped, 3 * kMiB);
  free(big);
  // Many small objects: in_use_small follows (class sizes, at least the request).
  ASSERT_EQ(spanalloc_get_stats(&before), 0);
  constexpr int kCount = 20000;
  void **blocks = static_cast<void **>(spanalloc_malloc(kCount * sizeof(void *)));
  ASSERT_NE(blocks, nullptr);
  for (int i = 0; i < kCount; ++i) blocks[i] = malloc(opaque_size(64));
  ASSERT_EQ(spanalloc_get_stats(&after), 0);
  EXPECT_GE(after.in_use_small, before.in_use_small + kCount * 64 / 2)
      << "20000 live 64-byte objects barely show in in_use_small";
  for (int i = 0; i < kCount; ++i) free(blocks[i]);
  spanalloc_free(blocks);
}

}  // namespace api
