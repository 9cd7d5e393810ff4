// fork() from a multithreaded process while other threads allocate: every
// child must be able to allocate and free (malloc, new, large blocks, a new
// thread) and exit 0. alarm() turns a deadlock into a failure, in the child
// (SIGALRM, seen by the parent) and in the parent (the test process dies).
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "api_common.h"

using namespace api;

namespace {

std::atomic<bool> g_stop{false};
std::atomic<uint64_t> g_background_ops{0};

// Background load: every size range, malloc and new, some cross-thread.
void background(int id) {
  Rng rng(77 + id);
  std::vector<std::pair<void *, size_t>> live;
  while (!g_stop.load(std::memory_order_relaxed)) {
    if (live.size() > 200 || (!live.empty() && rng.below(2))) {
      size_t k = rng.below(live.size());
      free(live[k].first);
      live[k] = live.back();
      live.pop_back();
    } else {
      size_t n = rng.below(50) == 0 ? 32 * kKiB + rng.below(2 * kMiB) : 1 + rng.below(2000);
      void *p = malloc(n);
      if (p) {
        memset(p, id, n < 256 ? n : 256);
        live.emplace_back(p, n);
      }
      char *q = new char[1 + rng.below(300)];
      delete[] q;
    }
    g_background_ops.fetch_add(1, std::memory_order_relaxed);
  }
  for (auto &[p, n] : live) free(p);
}

// The child's work. Returns 0 on success. Kept light: the point is that
// every allocator path works in the child, not volume.
int child_work(uint64_t seed, bool spawn_thread) {
  Rng rng(seed);
  std::vector<void *> v;
  for (int i = 0; i < 200; ++i) {
    size_t n = 1 + rng.below(4000);
    void *p = malloc(n);
    if (!p) return 3;
    fill_pattern(p, n, 8);
    if (check_pattern(p, n, 8) != SIZE_MAX) return 4;
    v.push_back(p);
  }
  for (void *p : v) free(p);
  std::string s(3000, 'q');
  std::vector<std::string> strings(50, s);
  int *arr = new int[10000];
  arr[9999] = 1;
  delete[] arr;
  // Large blocks: touch the first and last page only.
  const size_t big_n = 4 * kMiB + rng.below(kMiB);
  char *big = static_cast<char *>(malloc(big_n));
  if (!big) return 5;
  big[0] = 1;
  big[big_n - 1] = 2;
  char *big2 = static_cast<char *>(realloc(big, 2 * big_n));
  if (!big2 || big2[0] != 1 || big2[big_n - 1] != 2) return 6;
  free(big2);
  void *al = aligned_alloc(kMiB, kMiB);
  if (!al) return 7;
  free(al);
  void *z = calloc(1, 100000);
  if (!z || first_nonzero(z, 100000) != SIZE_MAX) return 9;
  free(z);
  if (spawn_thread) {
    int rc = 0;
    std::thread t([&rc] {
      for (int i = 0; i < 1000; ++i) {
        void *p = malloc(64 + i);
        if (!p) rc = 8;
        free(p);
      }
    });
    t.join();
    if (rc) return rc;
  }
  return 0;
}

std::string describe(int status) {
  char buf[64];
  if (WIFEXITED(status)) snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status)) snprintf(buf, sizeof buf, "signal %d%s", WTERMSIG(status),
                                         WTERMSIG(status) == SIGALRM ? " (deadlock: alarm fired)" : "");
  else snprintf(buf, sizeof buf, "status 0x%x", status);
  return buf;
}

// Background housekeeping: statistics, reports, releasing memory to the OS
// and the malloc_* extras take the allocator's other locks while forks happen.
void housekeeping() {
  StatsFn stats = stats_fn();
  auto release = reinterpret_cast<size_t (*)()>(
      resolve("spanalloc_release_free_memory", kLinked ? reinterpret_cast<void *>(
#if SPANALLOC_API_LINKED
                                                             &spanalloc_release_free_memory
#else
                                                             0
#endif
                                                             )
                                                       : nullptr));
  unsigned i = 0;
  while (!g_stop.load(std::memory_order_relaxed)) {
    spanalloc_stats s{};
    if (stats) stats(&s);
    if (release && i % 16 == 0) release();
    if (i % 8 == 1) malloc_trim(0);
    if (i % 8 == 2) {
      struct mallinfo2 mi = mallinfo2();
      escape(&mi);
    }
    ++i;
    usleep(300);
  }
}

struct Background {
  std::vector<std::thread> threads;
  explicit Background(int n) {
    g_stop = false;
    for (int i = 0; i < n; ++i) threads.emplace_back(background, i + 1);
    threads.emplace_back(housekeeping);
  }
  ~Background() {
    g_stop = true;
    for (auto &t : threads) t.join();
  }
};

}  // namespace

TEST(Fork, ChildrenAllocateWhileParentThreadsAllocate) {
  alarm(100);
  Background bg(3);
  constexpr int kForks = 120;
  int failures = 0;
  std::string first_failure;
  for (int i = 0; i < kForks; ++i) {
    // Let the background threads get going between forks.
    uint64_t ops = g_background_ops.load();
    while (g_background_ops.load() < ops + 50) std::this_thread::yield();
    pid_t pid = fork();
    ASSERT_GE(pid, 0) << "fork failed";
    if (pid == 0) {
      alarm(15);
      _exit(child_work(static_cast<uint64_t>(i), i % 5 == 0));
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      if (failures++ == 0) first_failure = "fork #" + std::to_string(i) + ": " + describe(status);
    }
  }
  EXPECT_EQ(failures, 0) << failures << " of " << kForks << " children failed; first: " << first_failure;
  alarm(0);
}

// Forks from a non-main thread while the main thread and others allocate.
TEST(Fork, ForkFromSecondaryThread) {
  alarm(100);
  Background bg(2);
  int failures = 0;
  std::string first_failure;
  std::thread forker([&] {
    for (int i = 0; i < 60; ++i) {
      pid_t pid = fork();
      if (pid < 0) {
        ++failures;
        continue;
      }
      if (pid == 0) {
        alarm(15);
        _exit(child_work(1000 + static_cast<uint64_t>(i), i % 3 == 0));
      }
      int status = 0;
      waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        if (failures++ == 0) first_failure = describe(status);
    }
  });
  // The main thread allocates too.
  Rng rng(5);
  for (int i = 0; i < 20000; ++i) {
    void *p = malloc(1 + rng.below(5000));
    free(p);
  }
  forker.join();
  EXPECT_EQ(failures, 0) << "first failure: " << first_failure;
  alarm(0);
}

// A child that forks again while its own new thread allocates.
TEST(Fork, NestedForks) {
  alarm(100);
  Background bg(2);
  int failures = 0;
  std::string first_failure;
  for (int i = 0; i < 30; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      alarm(20);
      std::atomic<bool> stop{false};
      std::thread t([&stop] {
        while (!stop.load()) free(malloc(100));
      });
      int rc = 0;
      for (int j = 0; j < 3 && rc == 0; ++j) {
        pid_t g = fork();
        if (g < 0) {
          rc = 20;
          break;
        }
        if (g == 0) {
          alarm(15);
          _exit(child_work(5000 + static_cast<uint64_t>(i * 3 + j), false));
        }
        int st = 0;
        waitpid(g, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) rc = 21;
      }
      stop = true;
      t.join();
      if (rc == 0) rc = child_work(static_cast<uint64_t>(i), false);
      _exit(rc);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      if (failures++ == 0) first_failure = "fork #" + std::to_string(i) + ": " + describe(status);
  }
  EXPECT_EQ(failures, 0) << "first failure: " << first_failure;
  alarm(0);
}

// The parent's heap is intact after many forks: blocks allocated before the
// forks keep their contents and can be freed.
TEST(Fork, ParentHeapIntactAfterForks) {
  alarm(60);
  std::vector<std::pair<void *, size_t>> live;
  Rng rng(8);
  for (int i = 0; i < 2000; ++i) {
    size_t n = 1 + rng.below(i % 50 == 0 ? kMiB : 3000);
    void *p = malloc(n);
    ASSERT_NE(p, nullptr);
    fill_pattern(p, n, 1);
    live.emplace_back(p, n);
  }
  {
    Background bg(2);
    for (int i = 0; i < 40; ++i) {
      pid_t pid = fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        alarm(15);
        // The child frees blocks its parent allocated, then allocates.
        for (size_t k = 0; k < live.size(); k += 2) {
          if (check_pattern(live[k].first, live[k].second, 1) != SIZE_MAX) _exit(30);
          free(live[k].first);
        }
        _exit(child_work(9000 + static_cast<uint64_t>(i), false));
      }
      int status = 0;
      ASSERT_EQ(waitpid(pid, &status, 0), pid);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "fork #" << i << ": " << describe(status);
    }
  }
  for (auto &[p, n] : live) {
    ASSERT_EQ(check_pattern(p, n, 1), SIZE_MAX);
    free(p);
  }
  alarm(0);
}
