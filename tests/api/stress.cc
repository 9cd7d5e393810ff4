// Multithreaded stress with cross-thread frees and content verification.
// Fixed seeds; every thread stops after a fixed number of operations or a
// time limit, whichever comes first, so the runtime stays bounded.
#include <malloc.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "api_common.h"

using namespace api;

namespace {

enum Kind : uint8_t { kMalloc, kCalloc, kAligned, kNew, kNewArray, kNewAligned, kKinds };

struct Obj {
  void *p;
  size_t n;
  Kind kind;
};

// A multi-producer queue of objects for one consumer thread.
class Inbox {
 public:
  void push(std::vector<Obj> &batch) {
    std::lock_guard<std::mutex> g(mu_);
    for (Obj &o : batch) q_.push_back(o);
    batch.clear();
  }
  void drain(std::vector<Obj> &out) {
    std::lock_guard<std::mutex> g(mu_);
    while (!q_.empty()) {
      out.push_back(q_.front());
      q_.pop_front();
    }
  }

 private:
  std::mutex mu_;
  std::deque<Obj> q_;
};

size_t pick_size(Rng &rng) {
  uint64_t r = rng.below(10000);
  if (r < 6000) return 1 + rng.below(128);
  if (r < 8500) return 129 + rng.below(2048);
  if (r < 9800) return 2049 + rng.below(32 * kKiB);
  if (r < 9995) return 32 * kKiB + rng.below(256 * kKiB);
  return 256 * kKiB + rng.below(2 * kMiB);
}

Obj make(Rng &rng) {
  size_t n = pick_size(rng);
  Kind kind = static_cast<Kind>(rng.below(kKinds));
  void *p = nullptr;
  switch (kind) {
    case kMalloc: p = malloc(n); break;
    case kCalloc: p = calloc(1, n); break;
    case kAligned: p = aligned_alloc(size_t{16} << rng.below(8), n); break;
    case kNew: p = ::operator new(n); break;
    case kNewArray: p = ::operator new[](n); break;
    default: p = ::operator new(n, std::align_val_t{128}); break;
  }
  if (p) fill_pattern(p, n, kind);
  return {p, n, kind};
}

void destroy(const Obj &o) {
  switch (o.kind) {
    case kNew: ::operator delete(o.p, o.n); break;
    case kNewArray: ::operator delete[](o.p); break;
    case kNewAligned: ::operator delete(o.p, std::align_val_t{128}); break;
    default: free(o.p); break;
  }
}

struct Shared {
  std::vector<Inbox> inbox;
  std::atomic<uint64_t> bad{0}, null_results{0}, ops{0}, cross_frees{0};
  std::chrono::steady_clock::time_point deadline;
  explicit Shared(int threads) : inbox(static_cast<size_t>(threads)) {}
};

// Verifies and frees an object, counting a corrupted one.
void verify_and_free(Shared &sh, const Obj &o) {
  if (check_pattern(o.p, o.n, o.kind) != SIZE_MAX) sh.bad.fetch_add(1);
  destroy(o);
}

// Each thread: allocate, keep some objects locally, send some to other
// threads, free what others sent (after verifying), realloc some received ones.
void worker(Shared &sh, int self, int threads, uint64_t seed, long max_ops) {
  Rng rng(seed);
  std::vector<Obj> local, received;
  std::vector<std::vector<Obj>> outgoing(static_cast<size_t>(threads));
  for (long op = 0; op < max_ops; ++op) {
    if ((op & 1023) == 0 && std::chrono::steady_clock::now() > sh.deadline) break;
    uint64_t r = rng.below(100);
    if (r < 45 || local.empty()) {
      Obj o = make(rng);
      if (!o.p) {
        sh.null_results.fetch_add(1);
        continue;
      }
      if (rng.below(2) == 0 && threads > 1) {
        int to = static_cast<int>(rng.below(static_cast<uint64_t>(threads - 1)));
        if (to >= self) ++to;
        outgoing[to].push_back(o);
        if (outgoing[to].size() >= 32) sh.inbox[to].push(outgoing[to]);
      } else {
        local.push_back(o);
      }
    } else if (r < 85) {
      size_t i = rng.below(local.size());
      verify_and_free(sh, local[i]);
      local[i] = local.back();
      local.pop_back();
    } else {
      sh.inbox[self].drain(received);
      for (Obj &o : received) {
        sh.cross_frees.fetch_add(1);
        if (o.kind <= kCalloc && rng.below(4) == 0) {
          // realloc a block another thread allocated, then free it here.
          if (check_pattern(o.p, o.n, o.kind) != SIZE_MAX) sh.bad.fetch_add(1);
          size_t keep = o.n < 64 ? o.n : 64;
          unsigned char head[64];
          memcpy(head, o.p, keep);
          size_t n2 = pick_size(rng);
          void *q = realloc(o.p, n2);
          if (!q) {
            sh.null_results.fetch_add(1);
            free(o.p);
            continue;
          }
          if (memcmp(q, head, keep < n2 ? keep : n2) != 0) sh.bad.fetch_add(1);
          free(q);
        } else {
          verify_and_free(sh, o);
        }
      }
      received.clear();
    }
    if (local.size() > 4000) {
      for (size_t i = 0; i < 2000; ++i) verify_and_free(sh, local[i]);
      local.erase(local.begin(), local.begin() + 2000);
    }
  }
  for (int t = 0; t < threads; ++t)
    if (!outgoing[t].empty()) sh.inbox[t].push(outgoing[t]);
  for (const Obj &o : local) verify_and_free(sh, o);
  sh.ops.fetch_add(1);
}

void run(int threads, long ops_per_thread, double seconds) {
  Shared sh(threads);
  sh.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<long>(seconds * 1000));
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back(worker, std::ref(sh), t, threads, uint64_t(1000 + t), ops_per_thread);
  for (auto &t : ts) t.join();
  // Whatever is still queued was sent by a thread that has exited.
  std::vector<Obj> rest;
  for (auto &in : sh.inbox) in.drain(rest);
  for (const Obj &o : rest) verify_and_free(sh, o);
  EXPECT_EQ(sh.bad.load(), 0u) << "objects whose contents changed while live";
  EXPECT_EQ(sh.null_results.load(), 0u) << "allocations that returned NULL";
  EXPECT_GT(sh.cross_frees.load(), 0u);
}

}  // namespace

TEST(Stress, AllToAllCrossThreadFrees) { run(4, 400000, 3.0); }

TEST(Stress, ManyThreadsFewCores) { run(12, 60000, 2.0); }

// One thread allocates, another verifies and frees: every object crosses.
TEST(Stress, ProducerConsumer) {
  constexpr int kObjects = 300000;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::vector<Obj>> batches;
  bool done = false;
  std::atomic<uint64_t> bad{0}, nulls{0};
  std::thread consumer([&] {
    for (;;) {
      std::vector<Obj> b;
      {
        std::unique_lock<std::mutex> g(mu);
        cv.wait(g, [&] { return !batches.empty() || done; });
        if (batches.empty()) return;
        b = std::move(batches.front());
        batches.pop_front();
      }
      for (const Obj &o : b) {
        if (check_pattern(o.p, o.n, o.kind) != SIZE_MAX) bad.fetch_add(1);
        destroy(o);
      }
    }
  });
  Rng rng(99);
  std::vector<Obj> batch;
  for (int i = 0; i < kObjects; ++i) {
    Obj o = make(rng);
    if (!o.p) {
      nulls.fetch_add(1);
      continue;
    }
    batch.push_back(o);
    if (batch.size() == 256) {
      std::unique_lock<std::mutex> g(mu);
      // Bound the backlog so memory stays small.
      while (batches.size() > 64) {
        g.unlock();
        std::this_thread::yield();
        g.lock();
      }
      batches.push_back(std::move(batch));
      batch.clear();
      cv.notify_one();
    }
  }
  {
    std::lock_guard<std::mutex> g(mu);
    batches.push_back(std::move(batch));
    done = true;
  }
  cv.notify_one();
  consumer.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(nulls.load(), 0u);
}

// Threads hammering one size class, allocating and freeing each other's
// objects in tight rounds (stresses central-list batch transfers).
TEST(Stress, SameClassPingPong) {
  constexpr int kThreads = 4, kRounds = 200, kPer = 2000;
  std::vector<std::vector<void *>> slots(kThreads);
  std::atomic<int> phase{0};
  std::atomic<uint64_t> bad{0};
  auto body = [&](int t) {
    for (int round = 0; round < kRounds; ++round) {
      // Allocate into own slot.
      std::vector<void *> &mine = slots[t];
      mine.resize(kPer);
      for (int i = 0; i < kPer; ++i) {
        mine[i] = malloc(48);
        fill_pattern(mine[i], 48, 48);
      }
      // Barrier.
      int target = (round * 2 + 1) * kThreads;
      phase.fetch_add(1);
      while (phase.load() < target) std::this_thread::yield();
      // Free the neighbour's objects.
      std::vector<void *> &theirs = slots[(t + 1) % kThreads];
      for (void *p : theirs) {
        if (check_pattern(p, 48, 48) != SIZE_MAX) bad.fetch_add(1);
        free(p);
      }
      phase.fetch_add(1);
      while (phase.load() < target + kThreads) std::this_thread::yield();
    }
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) ts.emplace_back(body, t);
  for (auto &t : ts) t.join();
  EXPECT_EQ(bad.load(), 0u);
}

// Concurrent large allocations (whole spans from the page heap).
TEST(Stress, ConcurrentLargeAllocations) {
  constexpr int kThreads = 4;
  std::atomic<uint64_t> bad{0}, nulls{0};
  auto body = [&](int t) {
    Rng rng(500 + t);
    std::vector<std::pair<void *, size_t>> live;
    for (int i = 0; i < 1500; ++i) {
      if (live.size() > 24 || (!live.empty() && rng.below(2))) {
        size_t k = rng.below(live.size());
        if (check_pattern(live[k].first, live[k].second, 3) != SIZE_MAX) bad.fetch_add(1);
        free(live[k].first);
        live[k] = live.back();
        live.pop_back();
      } else {
        size_t n = 32 * kKiB + 1 + rng.below(rng.below(8) == 0 ? 8 * kMiB : 512 * kKiB);
        void *p = malloc(n);
        if (!p) {
          nulls.fetch_add(1);
          continue;
        }
        fill_pattern(p, n, 3);
        live.emplace_back(p, n);
      }
    }
    for (auto &[p, n] : live) {
      if (check_pattern(p, n, 3) != SIZE_MAX) bad.fetch_add(1);
      free(p);
    }
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) ts.emplace_back(body, t);
  for (auto &t : ts) t.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(nulls.load(), 0u);
}
