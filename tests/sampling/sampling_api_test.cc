// The whole malloc interface with sampling on at high rates (ctest sets
// SPANALLOC_PROFILE_RATE=4096 and SPANALLOC_GUARD_SAMPLE=16, so many objects
// live in spans of their own, guarded or not): contents, sizes and
// alignment are as without sampling, across threads, thread exit and fork,
// and spanalloc_dump_profile writes a profile. Built linked and preloaded,
// like the API suites (tests/api).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "api_common.h"

extern "C" int spanalloc_dump_profile(const char *path) __attribute__((weak));

using namespace api;

namespace {

using DumpFn = int (*)(const char *);
DumpFn dump_fn() {
  return reinterpret_cast<DumpFn>(resolve("spanalloc_dump_profile", reinterpret_cast<void *>(&spanalloc_dump_profile)));
}

int ProtectedMappings() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int n = 0;
  while (std::getline(maps, line)) n += line.find(" ---p ") != std::string::npos;
  return n;
}

TEST(Sampling, SamplingIsOnInThisProcess) {
  ASSERT_NE(getenv("SPANALLOC_GUARD_SAMPLE"), nullptr) << "ctest sets the sampling environment";
  std::vector<void *> keep;
  for (int i = 0; i < 2000; i++) keep.push_back(malloc(64));
  EXPECT_GT(ProtectedMappings(), 10) << "guarded objects have PROT_NONE guard pages";
  for (void *p : keep) free(p);
}

TEST(Sampling, EveryAllocationFunctionKeepsItsContract) {
  Rng rng(7);
  const size_t sizes[] = {1, 8, 16, 24, 48, 100, 256, 1000, 1024, 1500, 4096, 8192, 20000, 32768, 40000, 300000};
  for (int round = 0; round < 60; round++) {
    for (size_t n : sizes) {
      void *p = malloc(n);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(is_aligned(p, min_malloc_alignment(n)));
      EXPECT_GE(malloc_usable_size(p), n);
      fill_pattern(p, n, n);
      void *c = calloc(1, n);
      ASSERT_NE(c, nullptr);
      EXPECT_EQ(first_nonzero(c, n), SIZE_MAX);
      size_t align = size_t{8} << rng.below(10);  // 8 .. 4096
      void *a = aligned_alloc(align, (n + align - 1) / align * align);
      ASSERT_NE(a, nullptr);
      EXPECT_TRUE(is_aligned(a, align)) << align;
      void *m = nullptr;
      ASSERT_EQ(posix_memalign(&m, 64, n), 0);
      EXPECT_TRUE(is_aligned(m, 64));
      fill_seq(c, 0, n, 3);
      size_t grown = n * 2 + rng.below(100);
      c = realloc(c, grown);
      ASSERT_NE(c, nullptr);
      EXPECT_EQ(check_seq(c, 0, n, 3), SIZE_MAX);
      c = realloc(c, n / 2 + 1);
      EXPECT_EQ(check_seq(c, 0, n / 2 + 1, 3), SIZE_MAX);
      EXPECT_EQ(check_pattern(p, n, n), SIZE_MAX);
      char *s = new char[n];
      memset(s, 1, n);
      delete[] s;
      free(p);
      free(c);
      free(a);
      free(m);
    }
  }
}

TEST(Sampling, ObjectsFreedByOtherThreads) {
  constexpr int kObjects = 20000;
  std::vector<void *> slots(kObjects);
  std::atomic<int> produced{0};
  std::thread producer([&] {
    Rng rng(11);
    for (int i = 0; i < kObjects; i++) {
      size_t n = 1 + rng.below(3000);
      void *p = malloc(n);
      fill_pattern(p, n, uint64_t(i));
      slots[i] = p;
      reinterpret_cast<unsigned char *>(p)[0] = static_cast<unsigned char>(n & 0xff);
      produced.store(i + 1, std::memory_order_release);
    }
  });
  std::thread consumer([&] {
    for (int i = 0; i < kObjects; i++) {
      while (produced.load(std::memory_order_acquire) <= i) std::this_thread::yield();
      free(slots[i]);
    }
  });
  producer.join();
  consumer.join();
}

TEST(Sampling, ManyShortThreads) {
  for (int round = 0; round < 20; round++) {
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; t++)
      ts.emplace_back([t] {
        std::vector<void *> keep;
        for (int i = 0; i < 500; i++) keep.push_back(malloc(size_t(16 + (i * 37 + t) % 2000)));
        for (size_t i = 0; i < keep.size(); i += 2) free(keep[i]);
      });
    for (auto &t : ts) t.join();
  }
}

TEST(Sampling, ForkedChildAllocates) {
  std::vector<void *> keep;
  for (int i = 0; i < 1000; i++) keep.push_back(malloc(size_t(i % 500 + 1)));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    for (void *p : keep) free(p);
    for (int i = 0; i < 10000; i++) free(malloc(size_t(i % 3000 + 1)));
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  for (void *p : keep) free(p);
}

TEST(Sampling, DumpProfileWritesTheLiveSamples) {
  DumpFn dump = dump_fn();
  ASSERT_NE(dump, nullptr);
  std::vector<void *> keep;
  for (int i = 0; i < 4000; i++) keep.push_back(malloc(1000));  // ~4 MB live: ~1000 samples at 4 KiB
  std::string path = testing::TempDir() + "sampling_api_" + std::to_string(getpid()) + ".heap";
  ASSERT_EQ(dump(path.c_str()), 0);
  std::ifstream in(path);
  std::string header, line;
  std::getline(in, header);
  std::smatch m;
  ASSERT_TRUE(std::regex_match(header, m, std::regex(R"(heap profile: +(\d+): +(\d+) \[ +0: +0\] @ heapprofile)")))
      << header;
  EXPECT_GE(std::stoull(m[2]), 3000000u) << "the estimate covers the ~4 MB held here";
  int stacks = 0;
  bool maps = false;
  const std::regex sample_line(R"( *\d+: +\d+ \[ +0: +0\] @( 0x[0-9a-f]+)+)");
  while (std::getline(in, line)) {
    stacks += std::regex_match(line, sample_line);
    maps |= line == "MAPPED_LIBRARIES:";
  }
  EXPECT_GT(stacks, 0);
  EXPECT_TRUE(maps);
  unlink(path.c_str());
  EXPECT_EQ(dump("/nonexistent-directory/x.heap"), ENOENT);
  EXPECT_EQ(dump(""), EINVAL);
  for (void *p : keep) free(p);
}

}  // namespace
