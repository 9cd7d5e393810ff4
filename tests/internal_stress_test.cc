// Multithreaded stress of the whole allocator through the spanalloc_* API
// (the build that TSan, ASan and UBSan check). Objects move between threads;
// every object carries a pattern derived from its address and size that is
// verified before it is freed. Fixed seeds.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "central_list.h"
#include "page_heap.h"
#include "spanalloc.h"

namespace spanalloc {
namespace {

struct Block {
  unsigned char *p;
  size_t n;
};

unsigned char PatternByte(const Block &b, size_t i) {
  return static_cast<unsigned char>((reinterpret_cast<uintptr_t>(b.p) >> 4) + b.n + i * 31);
}
void Fill(const Block &b) {
  size_t step = b.n > 4096 ? 509 : 1;
  for (size_t i = 0; i < b.n; i += step) b.p[i] = PatternByte(b, i);
}
bool Check(const Block &b) {
  size_t step = b.n > 4096 ? 509 : 1;
  for (size_t i = 0; i < b.n; i += step)
    if (b.p[i] != PatternByte(b, i)) return false;
  return true;
}

size_t RandomSize(std::mt19937 &rng) {
  uint32_t r = rng() % 1000;
  if (r < 700) return 1 + rng() % 256;
  if (r < 950) return 257 + rng() % 32768;
  if (r < 995) return 32769 + rng() % (1 << 20);
  return (1 << 20) + rng() % (8 << 20);
}

TEST(InternalStress, CrossThreadFreesKeepContents) {
  const int kThreads = 4, kOps = 30000;
  std::mutex mu;
  std::vector<Block> shared;  // objects handed to other threads
  std::atomic<int> corrupt{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(1000 + t);
      std::vector<Block> mine;
      for (int op = 0; op < kOps; op++) {
        uint32_t what = rng() % 100;
        if (what < 50 || mine.empty()) {
          Block b{static_cast<unsigned char *>(spanalloc_malloc(RandomSize(rng))), 0};
          if (b.p == nullptr) continue;
          b.n = spanalloc_usable_size(b.p);
          Fill(b);
          mine.push_back(b);
        } else if (what < 70) {
          std::lock_guard<std::mutex> l(mu);
          shared.push_back(mine.back());
          mine.pop_back();
        } else if (what < 85) {
          Block b;
          {
            std::lock_guard<std::mutex> l(mu);
            if (shared.empty()) continue;
            b = shared.back();
            shared.pop_back();
          }
          if (!Check(b)) corrupt++;
          spanalloc_free(b.p);
        } else if (what < 92) {
          size_t i = rng() % mine.size();
          if (!Check(mine[i])) corrupt++;
          size_t n = RandomSize(rng);
          size_t keep = std::min(n, mine[i].n);
          auto *q = static_cast<unsigned char *>(spanalloc_realloc(mine[i].p, n));
          ASSERT_NE(q, nullptr);
          for (size_t k = 0; k < keep; k += (mine[i].n > 4096 ? 509 : 1))  // the old block's fill step
            if (q[k] != PatternByte(mine[i], k)) {
              corrupt++;
              break;
            }
          mine[i] = Block{q, spanalloc_usable_size(q)};
          Fill(mine[i]);
        } else {
          size_t i = rng() % mine.size();
          if (!Check(mine[i])) corrupt++;
          spanalloc_free(mine[i].p);
          mine[i] = mine.back();
          mine.pop_back();
        }
      }
      for (Block &b : mine) {
        if (!Check(b)) corrupt++;
        spanalloc_free(b.p);
      }
    });
  }
  for (auto &t : threads) t.join();
  for (Block &b : shared) {
    if (!Check(b)) corrupt++;
    spanalloc_free(b.p);
  }
  EXPECT_EQ(corrupt.load(), 0);
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    const char *why = g_central[cl].Validate();
    ASSERT_EQ(why, nullptr) << "class " << cl << ": " << why;
  }
  const char *why = g_page_heap.Validate();
  EXPECT_EQ(why, nullptr) << why;
  spanalloc_stats s;
  spanalloc_get_stats(&s);
  EXPECT_EQ(s.in_use_large, 0u);
}

// Threads racing to grow the heap: memory one thread mapped may be taken by
// another before the first retries; that must never look like ENOMEM.
TEST(InternalStress, ConcurrentGrowthNeverFails) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(77 + t);
      std::vector<void *> live;
      for (int i = 0; i < 300; i++) {
        size_t n = (size_t{1} << 20) + rng() % (64u << 20);
        void *p = spanalloc_malloc(n);
        if (p == nullptr) {
          failures++;
          continue;
        }
        static_cast<char *>(p)[0] = 1;
        live.push_back(p);
        if (live.size() > 2) {
          spanalloc_free(live.front());
          live.erase(live.begin());
        }
      }
      for (void *p : live) spanalloc_free(p);
    });
  }
  for (auto &t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(g_page_heap.Validate(), nullptr);
}

TEST(InternalStress, ReleaseWhileAllocating) {
  std::atomic<bool> stop{false};
  std::thread releaser([&] {
    while (!stop.load()) {
      spanalloc_release_free_memory();
      std::this_thread::yield();
    }
  });
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; i++) {
    size_t n = 40000 + rng() % 400000;
    auto *p = static_cast<unsigned char *>(spanalloc_malloc(n));
    ASSERT_NE(p, nullptr);
    memset(p, 0xcd, n);
    for (size_t k = 0; k < n; k += 4096) ASSERT_EQ(p[k], 0xcd);
    spanalloc_free(p);
  }
  stop = true;
  releaser.join();
  EXPECT_EQ(g_page_heap.Validate(), nullptr);
}

}  // namespace
}  // namespace spanalloc
