// Allocation at the edges of a process's life: before main (a constructor
// running early), during dynamic loading (dlopen while threads allocate), in
// thread-exit destructors (thread_local, pthread keys) and after exit begins
// (atexit handlers, static destructors, exit while threads still allocate).
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
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

// ---- Before main ---------------------------------------------------------

struct EarlyBlocks {
  void *small = nullptr;
  int *array = nullptr;
  void *large = nullptr;
  void *zeroed = nullptr;
  void *aligned = nullptr;
  int errors = 0;
  bool ran = false;
};
EarlyBlocks g_early;

constexpr size_t kEarlySmall = 100, kEarlyArray = 1000, kEarlyLarge = kMiB, kEarlyZeroed = 5000;

__attribute__((constructor(101))) void allocate_before_main() {
  g_early.ran = true;
  // A first allocation that is freed at once, then some that live on.
  void *p = malloc(opaque_size(10));
  if (!p) ++g_early.errors;
  free(p);
  g_early.small = malloc(opaque_size(kEarlySmall));
  g_early.array = new int[kEarlyArray];
  g_early.large = malloc(opaque_size(kEarlyLarge));
  g_early.zeroed = calloc(opaque_size(kEarlyZeroed), 1);
  if (posix_memalign(&g_early.aligned, 4096, opaque_size(8192)) != 0) ++g_early.errors;
  if (!g_early.small || !g_early.large || !g_early.zeroed) {
    ++g_early.errors;
    return;
  }
  fill_pattern(g_early.small, kEarlySmall, 1);
  for (size_t i = 0; i < kEarlyArray; ++i) g_early.array[i] = static_cast<int>(i * 3);
  fill_pattern(g_early.large, kEarlyLarge, 2);
  if (first_nonzero(g_early.zeroed, kEarlyZeroed) != SIZE_MAX) ++g_early.errors;
  void *r = realloc(malloc(opaque_size(20)), opaque_size(40000));
  if (!r) ++g_early.errors;
  free(r);
}

// ---- After exit begins -----------------------------------------------------

// Allocates, checks and frees a few blocks of each size range. Returns 0 on success.
int allocate_late(uint64_t tag) {
  std::vector<void *> v;
  for (size_t n : {8ul, 100ul, 3000ul, 40000ul, 2 * kMiB}) {
    void *p = malloc(n);
    if (!p) return 1;
    fill_pattern(p, n, tag);
    if (check_pattern(p, n, tag) != SIZE_MAX) return 2;
    v.push_back(p);
  }
  std::string s(10000, 'z');
  s += "tail";
  int *arr = new int[5000];
  arr[4999] = 1;
  delete[] arr;
  for (void *p : v) free(p);
  return s.size() == 10004 ? 0 : 3;
}

void say(const char *msg) {
  ssize_t rc = write(2, msg, strlen(msg));
  (void)rc;
}

void atexit_allocates() {
  if (allocate_late(20) != 0) {
    say("atexit handler: allocation failed\n");
    _exit(3);
  }
  say("atexit-alloc-ok\n");
}

std::atomic<bool> g_static_dtor_armed{false};
std::atomic<bool> g_free_early_at_exit{true};

// A static object whose destructor runs after main returns / exit() begins.
struct LateUser {
  ~LateUser() {
    if (g_free_early_at_exit.load()) {
      // Free blocks allocated before main, if a test left them for us.
      free(g_early.small);
      delete[] g_early.array;
      free(g_early.large);
      free(g_early.zeroed);
      free(g_early.aligned);
    }
    if (g_static_dtor_armed.load()) {
      if (allocate_late(21) != 0) {
        say("static destructor: allocation failed\n");
        _exit(4);
      }
      say("static-dtor-alloc-ok\n");
    }
  }
};
LateUser g_late_user;

}  // namespace

TEST(EarlyAllocation, ConstructorBeforeMainAllocates) {
  ASSERT_TRUE(g_early.ran);
  EXPECT_EQ(g_early.errors, 0);
  ASSERT_NE(g_early.small, nullptr);
  ASSERT_NE(g_early.array, nullptr);
  ASSERT_NE(g_early.large, nullptr);
  EXPECT_EQ(check_pattern(g_early.small, kEarlySmall, 1), SIZE_MAX);
  for (size_t i = 0; i < kEarlyArray; ++i) ASSERT_EQ(g_early.array[i], static_cast<int>(i * 3));
  EXPECT_EQ(check_pattern(g_early.large, kEarlyLarge, 2), SIZE_MAX);
  EXPECT_TRUE(is_aligned(g_early.aligned, 4096));
  EXPECT_GE(malloc_usable_size(g_early.small), kEarlySmall);
  EXPECT_GE(malloc_usable_size(g_early.large), kEarlyLarge);
  // The early blocks belong to spanalloc: free them here. (In every other
  // test process the static destructor frees them after exit begins.)
  free(g_early.small);
  delete[] g_early.array;
  free(g_early.large);
  free(g_early.zeroed);
  free(g_early.aligned);
  g_free_early_at_exit = false;
}

TEST(LateAllocation, AtexitHandlerAllocates) {
  EXPECT_EXIT(
      {
        atexit(atexit_allocates);
        exit(0);
      },
      ::testing::ExitedWithCode(0), "atexit-alloc-ok");
}

TEST(LateAllocation, StaticDestructorAllocates) {
  EXPECT_EXIT(
      {
        g_static_dtor_armed = true;
        exit(0);
      },
      ::testing::ExitedWithCode(0), "static-dtor-alloc-ok");
}

namespace {
std::atomic<bool> g_spin{true};
void *spin_allocating(void *) {
  Rng rng(pthread_self());
  while (g_spin.load(std::memory_order_relaxed)) {
    size_t n = 1 + rng.below(rng.below(20) == 0 ? 200000 : 2000);
    void *p = malloc(n);
    if (p) memset(p, 1, n < 16 ? n : 16);  // never past the requested size
    free(p);
  }
  return nullptr;
}
}  // namespace

// exit() while other threads keep allocating: static destructors and
// atexit handlers run concurrently with them; nothing may crash or hang.
TEST(LateAllocation, ExitWhileThreadsAllocate) {
  EXPECT_EXIT(
      {
        alarm(20);
        for (int i = 0; i < 3; ++i) {
          pthread_t t;
          pthread_create(&t, nullptr, spin_allocating, nullptr);
        }
        usleep(50000);
        atexit(atexit_allocates);
        g_static_dtor_armed = true;
        exit(0);
      },
      ::testing::ExitedWithCode(0), "atexit-alloc-ok(.|\n)*static-dtor-alloc-ok");
}

// ---- Thread exit -------------------------------------------------------

namespace {

std::atomic<int> g_tls_dtor_ok{0}, g_tls_dtor_bad{0};

struct ThreadLocalUser {
  void *held = nullptr;
  size_t n = 0;
  void touch(size_t size) {
    if (!held) {
      n = size;
      held = malloc(n);
      fill_pattern(held, n, 30);
    }
  }
  ~ThreadLocalUser() {
    // Runs at thread exit, possibly after the allocator's own per-thread
    // cleanup: freeing and allocating must both still work.
    bool ok = true;
    if (held) {
      ok = ok && check_pattern(held, n, 30) == SIZE_MAX;
      free(held);
    }
    ok = ok && allocate_late(31) == 0;
    void *p = malloc(64);
    ok = ok && p != nullptr;
    free(p);
    (ok ? g_tls_dtor_ok : g_tls_dtor_bad).fetch_add(1);
  }
};
thread_local ThreadLocalUser t_user;

pthread_key_t g_key;
std::atomic<int> g_key_dtor_ok{0}, g_key_dtor_bad{0};
void key_destructor(void *value) {
  // Frees the value (allocated by the thread) and allocates again; on the
  // first pass, sets a new value so the destructor runs a second round.
  auto *block = static_cast<size_t *>(value);
  size_t round = block[0];
  bool ok = check_pattern(block + 1, 1000 - sizeof(size_t), 32) == SIZE_MAX;
  free(block);
  ok = ok && allocate_late(33) == 0;
  if (round == 0) {
    auto *again = static_cast<size_t *>(malloc(1000));
    again[0] = 1;
    fill_pattern(again + 1, 1000 - sizeof(size_t), 32);
    pthread_setspecific(g_key, again);
  }
  (ok ? g_key_dtor_ok : g_key_dtor_bad).fetch_add(1);
}

}  // namespace

TEST(ThreadExit, ThreadLocalDestructorAllocatesAndFrees) {
  constexpr int kThreads = 200;
  spanalloc_stats before{};
  StatsFn stats = stats_fn();
  if (stats) stats(&before);
  for (int i = 0; i < kThreads; ++i) {
    std::thread t([i] {
      t_user.touch(1 + static_cast<size_t>(i) * 97 % 50000);
      for (int k = 0; k < 100; ++k) free(malloc(static_cast<size_t>(16 + k)));
    });
    t.join();
  }
  EXPECT_EQ(g_tls_dtor_ok.load(), kThreads);
  EXPECT_EQ(g_tls_dtor_bad.load(), 0);
  if (stats) {
    // A cache re-created by a destructor after the allocator's teardown must
    // not outlive the thread.
    spanalloc_stats after{};
    stats(&after);
    EXPECT_LE(after.thread_caches, before.thread_caches + 2)
        << "thread caches leaked by threads whose destructors allocated";
  }
}

TEST(ThreadExit, PthreadKeyDestructorAllocatesAndFrees) {
  spanalloc_stats before{};
  StatsFn stats = stats_fn();
  if (stats) stats(&before);
  ASSERT_EQ(pthread_key_create(&g_key, key_destructor), 0);
  constexpr int kThreads = 200;
  for (int i = 0; i < kThreads; ++i) {
    std::thread t([] {
      auto *block = static_cast<size_t *>(malloc(1000));
      block[0] = 0;
      fill_pattern(block + 1, 1000 - sizeof(size_t), 32);
      pthread_setspecific(g_key, block);
      for (int k = 0; k < 50; ++k) free(malloc(static_cast<size_t>(200 + k)));
    });
    t.join();
  }
  EXPECT_EQ(g_key_dtor_ok.load(), 2 * kThreads);
  EXPECT_EQ(g_key_dtor_bad.load(), 0);
  if (stats) {
    spanalloc_stats after{};
    stats(&after);
    EXPECT_LE(after.thread_caches, before.thread_caches + 2)
        << "thread caches leaked by threads whose key destructors allocated";
  }
  pthread_key_delete(g_key);
}

// ---- Dynamic loading -------------------------------------------------------

TEST(DynamicLoading, DlopenWhileThreadsAllocate) {
  g_spin = true;
  std::vector<pthread_t> threads(3);
  for (auto &t : threads) ASSERT_EQ(pthread_create(&t, nullptr, spin_allocating, nullptr), 0);
  int failures = 0;
  std::string first;
  for (int round = 0; round < 40; ++round) {
    void *m = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
    if (!m) {
      if (failures++ == 0) first = std::string("dlopen libm: ") + dlerror();
    } else {
      auto cosine = reinterpret_cast<double (*)(double)>(dlsym(m, "cos"));
      if (!cosine || cosine(0.0) != 1.0) ++failures;
      dlclose(m);
    }
    // A system library that is not loaded yet, when one is installed: the
    // dynamic linker allocates while mapping and relocating it. sqlite3 also
    // runs a query, allocating inside the dlopened code.
    if (void *sq = dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_LOCAL)) {
      using OpenFn = int (*)(const char *, void **);
      using ExecFn = int (*)(void *, const char *, int (*)(void *, int, char **, char **), void *, char **);
      using CloseFn = int (*)(void *);
      auto open_db = reinterpret_cast<OpenFn>(dlsym(sq, "sqlite3_open"));
      auto exec = reinterpret_cast<ExecFn>(dlsym(sq, "sqlite3_exec"));
      auto close_db = reinterpret_cast<CloseFn>(dlsym(sq, "sqlite3_close"));
      void *db = nullptr;
      if (open_db && exec && close_db && open_db(":memory:", &db) == 0) {
        int rows = 0;
        const char *sql =
            "CREATE TABLE t(a, b); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) "
            "INSERT INTO t SELECT x, printf('%0500d', x) FROM c; SELECT count(*), sum(length(b)) FROM t;";
        auto cb = [](void *arg, int, char **vals, char **) {
          *static_cast<int *>(arg) = atoi(vals[0]);
          return 0;
        };
        if (exec(db, sql, cb, &rows, nullptr) != 0 || rows != 2000) {
          if (failures++ == 0) first = "sqlite3 query in the dlopened library failed";
        }
        close_db(db);
      }
      dlclose(sq);
    }
    for (const char *name : {"libz.so.1", "libexpat.so.1", "liblzma.so.5"}) {
      if (void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL)) dlclose(h);
    }
    void *lib = dlopen(API_DLOPEN_LIB, RTLD_NOW | (round % 2 ? RTLD_GLOBAL : RTLD_LOCAL));
    if (!lib) {
      if (failures++ == 0) first = std::string("dlopen test lib: ") + dlerror();
      continue;
    }
    auto roundtrip = reinterpret_cast<long (*)(int)>(dlsym(lib, "api_lib_roundtrip"));
    auto make = reinterpret_cast<void *(*)(size_t)>(dlsym(lib, "api_lib_make"));
    auto take = reinterpret_cast<int (*)(void *, size_t)>(dlsym(lib, "api_lib_take"));
    if (!roundtrip || !make || !take) {
      if (failures++ == 0) first = "missing symbols in the test lib";
      dlclose(lib);
      continue;
    }
    const int n = 1000 + round;
    // Thread-local data of the library in several threads (dynamic TLS).
    std::atomic<int> tls_bad{0};
    std::vector<std::thread> users;
    for (int u = 0; u < 3; ++u)
      users.emplace_back([&, u] {
        long expect = static_cast<long>(n + u) * (n + u - 1) / 2 + (n + u) + 200;
        if (roundtrip(n + u) != expect) tls_bad.fetch_add(1);
      });
    for (auto &u : users) u.join();
    // (Not called from this thread: its thread_local would pin the library.)
    if (tls_bad.load()) ++failures;
    // Memory crosses the library boundary both ways.
    unsigned char *b = static_cast<unsigned char *>(make(5000));
    bool ok = b != nullptr;
    for (int i = 0; ok && i < 5000; ++i) ok = b[i] == 0x5e;
    free(b);
    void *mine = malloc(3000);
    memset(mine, 0x6f, 3000);
    if (take(mine, 3000) != 0) ok = false;
    if (!ok) ++failures;
    dlclose(lib);
  }
  g_spin = false;
  for (auto &t : threads) pthread_join(t, nullptr);
  EXPECT_EQ(failures, 0) << "first failure: " << first;
}
