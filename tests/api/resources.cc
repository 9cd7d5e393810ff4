// Resource faults: with the address space limited (RLIMIT_AS, as `ulimit -v`
// sets it) every entry point fails the way its contract says -- NULL with
// errno ENOMEM, ENOMEM returned, std::bad_alloc thrown, nullptr from the
// nothrow forms -- nothing crashes, a block that realloc could not grow is
// intact, and the allocator works again once memory is freed. Each case runs
// in a child process (the limit must not reach the other tests).
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <new>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "api_common.h"

using namespace api;

namespace {

// The spanalloc_* API: linked, or looked up in the preloaded library.
#if SPANALLOC_API_LINKED
#define API_FN(name) (&name)
#else
#define API_FN(name) reinterpret_cast<decltype(&name)>(dlsym(RTLD_DEFAULT, #name))
#endif

void *kSentinelPtr() { return reinterpret_cast<void *>(uintptr_t{0x5a5a5a50}); }

// One way to allocate: returns the block, or nullptr with `ok_failure` set
// when it failed as its contract says (anything else is reported).
struct EntryPoint {
  const char *name;
  std::function<void *(size_t, bool *ok_failure)> alloc;
};

void *null_enomem(void *p, bool *ok) {
  *ok = p == nullptr && errno == ENOMEM;
  return p;
}

std::vector<EntryPoint> entry_points() {
  std::vector<EntryPoint> v = {
      {"malloc", [](size_t n, bool *ok) { errno = 0; return null_enomem(malloc(opaque_size(n)), ok); }},
      {"calloc", [](size_t n, bool *ok) { errno = 0; return null_enomem(calloc(1, opaque_size(n)), ok); }},
      {"realloc(NULL)", [](size_t n, bool *ok) { errno = 0; return null_enomem(realloc(nullptr, opaque_size(n)), ok); }},
      {"reallocarray", [](size_t n, bool *ok) { errno = 0; return null_enomem(reallocarray(nullptr, 1, opaque_size(n)), ok); }},
      {"aligned_alloc", [](size_t n, bool *ok) { errno = 0; return null_enomem(aligned_alloc(64, opaque_size(n)), ok); }},
      {"memalign", [](size_t n, bool *ok) { errno = 0; return null_enomem(memalign(4096, opaque_size(n)), ok); }},
      {"valloc", [](size_t n, bool *ok) { errno = 0; return null_enomem(valloc(opaque_size(n)), ok); }},
      {"pvalloc", [](size_t n, bool *ok) { errno = 0; return null_enomem(pvalloc(opaque_size(n)), ok); }},
      {"posix_memalign",
       [](size_t n, bool *ok) {
         void *p = kSentinelPtr();
         int rc = posix_memalign(&p, 128, opaque_size(n));
         *ok = rc == ENOMEM && p == kSentinelPtr();
         return rc == 0 ? p : nullptr;
       }},
      {"operator new",
       [](size_t n, bool *ok) -> void * {
         try {
           return ::operator new(opaque_size(n));
         } catch (const std::bad_alloc &) {
           *ok = true;
           return nullptr;
         }
       }},
      {"operator new[](align)",
       [](size_t n, bool *ok) -> void * {
         try {
           return ::operator new[](opaque_size(n), std::align_val_t{256});
         } catch (const std::bad_alloc &) {
           *ok = true;
           return nullptr;
         }
       }},
      {"operator new(nothrow)",
       [](size_t n, bool *ok) {
         void *p = ::operator new(opaque_size(n), std::nothrow);
         *ok = p == nullptr;
         return p;
       }},
      {"operator new(align, nothrow)",
       [](size_t n, bool *ok) {
         void *p = ::operator new(opaque_size(n), std::align_val_t{64}, std::nothrow);
         *ok = p == nullptr;
         return p;
       }},
      {"spanalloc_malloc",
       [](size_t n, bool *ok) { errno = 0; return null_enomem(API_FN(spanalloc_malloc)(opaque_size(n)), ok); }},
      {"spanalloc_calloc",
       [](size_t n, bool *ok) { errno = 0; return null_enomem(API_FN(spanalloc_calloc)(opaque_size(n), 1), ok); }},
  };
  return v;
}

// How each block is given back (the entry points' own free functions match
// free() in spanalloc; operator delete is used for operator new's blocks).
void release(const std::string &name, void *p) {
  if (name.rfind("operator new[](align)", 0) == 0)
    ::operator delete[](p, std::align_val_t{256});
  else if (name == "operator new(align, nothrow)")
    ::operator delete(p, std::align_val_t{64});
  else if (name.rfind("operator new", 0) == 0)
    ::operator delete(p);
  else
    free(p);
}

void limit_address_space(size_t slack) {
  struct rlimit lim {};
  getrlimit(RLIMIT_AS, &lim);
  lim.rlim_cur = vm_bytes() + slack;
  if (setrlimit(RLIMIT_AS, &lim) != 0) {
    fprintf(stderr, "setrlimit failed\n");
    _exit(2);
  }
}

// Allocates with `e` until it fails; returns the number of blocks it got, or
// -1 (after printing why) if it failed against its contract or never failed.
long exhaust(const EntryPoint &e, size_t n, std::vector<void *> *held, size_t max_blocks) {
  for (size_t i = 0; i < max_blocks; i++) {
    bool ok = false;
    void *p = e.alloc(n, &ok);
    if (p == nullptr) {
      if (!ok) {
        fprintf(stderr, "%s(%zu): failed without its contract's error (errno %d)\n", e.name, n, errno);
        return -1;
      }
      return long(i);
    }
    static_cast<volatile char *>(p)[0] = 1;
    static_cast<volatile char *>(p)[n - 1] = 2;
    held->push_back(p);
  }
  fprintf(stderr, "%s(%zu): still succeeding after %zu blocks: the limit did not bite\n", e.name, n, max_blocks);
  return -1;
}

}  // namespace

class Resources : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "fast"); }
};

TEST_F(Resources, EveryEntryPointFailsCleanlyAndRecovers) {
  for (size_t n : {48ul, 5000ul, 100000ul, 3 * kMiB}) {
    EXPECT_EXIT(
        {
          // Every size range and the thread's cache exist before the limit.
          for (size_t m : {16ul, 48ul, 5000ul, 100000ul, 3 * kMiB}) free(malloc(opaque_size(m)));
          std::vector<void *> held;
          held.reserve(4 << 20);
          limit_address_space(64 * kMiB);
          int bad = 0;
          for (const EntryPoint &e : entry_points()) {
            long got = exhaust(e, n, &held, (4 << 20) - 1);
            if (got < 0) bad++;
            // Freed, the memory serves another size: the allocator works again.
            for (void *p : held) release(e.name, p);
            held.clear();
            for (size_t m : {64ul, 3000ul, 200000ul}) {
              std::vector<void *> again;
              for (int i = 0; i < 20; i++) {
                void *q = malloc(opaque_size(m));
                if (q == nullptr) {
                  fprintf(stderr, "after %s(%zu) failed and its blocks were freed, malloc(%zu) failed\n", e.name, n, m);
                  bad++;
                  break;
                }
                memset(q, 0x5c, m);
                again.push_back(q);
              }
              for (void *q : again) free(q);
            }
          }
          fprintf(stderr, "%d bad\n", bad);
          exit(bad == 0 ? 0 : 1);
        },
        ::testing::ExitedWithCode(0), "0 bad")
        << "block size " << n;
  }
}

// Child of ReallocThatCannotGrowKeepsTheBlock; exits 0 when all held.
[[noreturn]] void realloc_under_limit() {
  int bad = 0;
  char *small = static_cast<char *>(malloc(opaque_size(100)));
  char *large = static_cast<char *>(malloc(opaque_size(2 * kMiB)));
  if (!small || !large) exit(3);
  fill_seq(small, 0, 100, 1);
  fill_seq(large, 0, 2 * kMiB, 2);
  limit_address_space(32 * kMiB);
  for (size_t to : {64 * kMiB, 512 * kMiB}) {
    errno = 0;
    if (realloc(opaque(small), opaque_size(to)) != nullptr || errno != ENOMEM) {
      bad++;
      fprintf(stderr, "small -> %zu did not fail with ENOMEM\n", to);
    }
    errno = 0;
    if (realloc(opaque(large), opaque_size(to)) != nullptr || errno != ENOMEM) {
      bad++;
      fprintf(stderr, "large -> %zu did not fail with ENOMEM\n", to);
    }
    errno = 0;
    if (reallocarray(opaque(large), 2, opaque_size(to)) != nullptr || errno != ENOMEM) {
      bad++;
      fprintf(stderr, "reallocarray large -> 2 x %zu did not fail with ENOMEM\n", to);
    }
  }
  if (check_seq(small, 0, 100, 1) != SIZE_MAX) bad++, fprintf(stderr, "small block changed\n");
  if (check_seq(large, 0, 2 * kMiB, 2) != SIZE_MAX) bad++, fprintf(stderr, "large block changed\n");
  // Shrinking still works within the limit.
  large = static_cast<char *>(realloc(large, opaque_size(kMiB)));
  if (large == nullptr || check_seq(large, 0, kMiB, 2) != SIZE_MAX) bad++, fprintf(stderr, "shrink failed\n");
  free(small);
  free(large);
  fprintf(stderr, "%d bad\n", bad);
  exit(bad == 0 ? 0 : 1);
}

TEST_F(Resources, ReallocThatCannotGrowKeepsTheBlock) {
  EXPECT_EXIT(realloc_under_limit(), ::testing::ExitedWithCode(0), "0 bad");
}
