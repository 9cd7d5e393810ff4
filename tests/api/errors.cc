// Behaviour on bad input and failure: absurd sizes, overflowing products,
// bad alignments, errno preservation, operator new's handler and exceptions,
// real out-of-memory under an address-space limit. One test per contract.
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include <gtest/gtest.h>

#include "api_common.h"

using namespace api;

namespace {

const size_t kAbsurd[] = {
    SIZE_MAX,
    SIZE_MAX - 1,
    SIZE_MAX - 15,            // overflows adding a header or rounding to 16
    SIZE_MAX - 8191,          // overflows rounding to a page
    SIZE_MAX / 2 + 1,         // above PTRDIFF_MAX
    static_cast<size_t>(PTRDIFF_MAX),
    size_t{1} << 62,
    size_t{1} << 50,          // 1 PiB: more than any address space here
};

void *const kSentinel = reinterpret_cast<void *>(uintptr_t{0x5a5a5a50});

// The allocator keeps working after a failure.
void expect_usable() {
  std::vector<void *> v;
  for (size_t n : {1ul, 64ul, 4000ul, 40000ul, 3 * kMiB}) {
    void *p = malloc(opaque_size(n));
    ASSERT_NE(p, nullptr) << "malloc(" << n << ") failed after an error";
    memset(p, 0x11, n);
    v.push_back(p);
  }
  for (void *p : v) free(p);
}

}  // namespace

TEST(Errors, MallocAbsurdSizeIsNullENOMEM) {
  for (size_t n : kAbsurd) {
    errno = 0;
    void *p = malloc(opaque_size(n));
    EXPECT_EQ(p, nullptr) << "malloc(" << n << ")";
    EXPECT_EQ(errno, ENOMEM) << "malloc(" << n << ")";
    if (p) free(p);
  }
  expect_usable();
}

TEST(Errors, CallocOverflowIsNullENOMEM) {
  const std::pair<size_t, size_t> cases[] = {
      {SIZE_MAX, SIZE_MAX},
      {SIZE_MAX / 2 + 1, 2},              // product wraps to exactly 0
      {size_t{1} << 32, size_t{1} << 32},  // product wraps to exactly 0
      {2, SIZE_MAX / 2 + 1},
      {(SIZE_MAX / 3) + 1, 3},            // wraps to a small number
      {SIZE_MAX, 1},
      {1, SIZE_MAX - 15},
      {size_t{1} << 25, size_t{1} << 25},  // 1 PiB, no overflow, just too big
  };
  for (auto [count, size] : cases) {
    errno = 0;
    void *p = calloc(opaque_size(count), opaque_size(size));
    EXPECT_EQ(p, nullptr) << "calloc(" << count << ", " << size << ")";
    EXPECT_EQ(errno, ENOMEM) << "calloc(" << count << ", " << size << ")";
    if (p) free(p);
  }
  // Zero products are fine.
  void *z = calloc(opaque_size(0), opaque_size(SIZE_MAX));
  free(z);
  z = calloc(opaque_size(SIZE_MAX), opaque_size(0));
  free(z);
  expect_usable();
}

TEST(Errors, ReallocarrayOverflowIsNullENOMEMAndKeepsBlock) {
  errno = 0;
  void *p = reallocarray(nullptr, opaque_size(SIZE_MAX / 2 + 1), 2);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(errno, ENOMEM);
  if (p) free(p);

  unsigned char *blk = static_cast<unsigned char *>(malloc(opaque_size(100)));
  ASSERT_NE(blk, nullptr);
  fill_seq(blk, 0, 100, 5);
  const std::pair<size_t, size_t> cases[] = {
      {SIZE_MAX, 2}, {size_t{1} << 32, size_t{1} << 32}, {3, SIZE_MAX / 3 + 1}, {size_t{1} << 25, size_t{1} << 25}};
  for (auto [count, size] : cases) {
    errno = 0;
    void *q = reallocarray(blk, opaque_size(count), opaque_size(size));
    EXPECT_EQ(q, nullptr) << "reallocarray(p, " << count << ", " << size << ")";
    EXPECT_EQ(errno, ENOMEM);
    if (q) {
      blk = static_cast<unsigned char *>(q);
      break;
    }
  }
  // The original block is untouched and still owned by the caller.
  EXPECT_EQ(check_seq(blk, 0, 100, 5), SIZE_MAX);
  free(blk);
  expect_usable();
}

TEST(Errors, ReallocAbsurdSizeIsNullENOMEMAndKeepsBlock) {
  for (size_t start : {24ul, 5000ul, 100000ul, 2 * kMiB}) {
    unsigned char *p = static_cast<unsigned char *>(malloc(opaque_size(start)));
    ASSERT_NE(p, nullptr);
    fill_seq(p, 0, start, start);
    for (size_t n : kAbsurd) {
      errno = 0;
      void *q = realloc(p, opaque_size(n));
      EXPECT_EQ(q, nullptr) << "realloc(" << start << " -> " << n << ")";
      EXPECT_EQ(errno, ENOMEM);
      if (q) {
        p = static_cast<unsigned char *>(q);
        break;
      }
      ASSERT_EQ(check_seq(p, 0, start, start), SIZE_MAX) << "failed realloc damaged the block";
    }
    free(p);
  }
  errno = 0;
  EXPECT_EQ(realloc(nullptr, opaque_size(SIZE_MAX)), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  expect_usable();
}

TEST(Errors, AlignedFunctionsAbsurdSizeIsENOMEM) {
  for (size_t a : {16ul, 4096ul, kMiB}) {
    for (size_t n : {SIZE_MAX, SIZE_MAX - a + 1, SIZE_MAX / 2 + 1, size_t{1} << 50}) {
      errno = 0;
      EXPECT_EQ(aligned_alloc(a, opaque_size(n)), nullptr) << a << " " << n;
      EXPECT_EQ(errno, ENOMEM);
      errno = 0;
      EXPECT_EQ(memalign(a, opaque_size(n)), nullptr) << a << " " << n;
      EXPECT_EQ(errno, ENOMEM);
      void *out = kSentinel;
      int rc = posix_memalign(&out, a, opaque_size(n));
      EXPECT_EQ(rc, ENOMEM) << a << " " << n;
      EXPECT_TRUE(out == kSentinel || out == nullptr) << "posix_memalign failure wrote " << out;
    }
  }
  for (size_t n : {SIZE_MAX, SIZE_MAX - 4095, SIZE_MAX - 100, size_t{1} << 50}) {
    errno = 0;
    void *v = valloc(opaque_size(n));
    EXPECT_EQ(v, nullptr) << "valloc(" << n << ")";
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    void *pv = pvalloc(opaque_size(n));  // rounding up to a page overflows
    EXPECT_EQ(pv, nullptr) << "pvalloc(" << n << ")";
    EXPECT_EQ(errno, ENOMEM);
  }
  expect_usable();
}

TEST(Errors, PosixMemalignBadAlignmentIsEINVALOutputUntouched) {
  // Not a power of two, or not a multiple of sizeof(void *).
  for (size_t a : {size_t{0}, size_t{1}, size_t{2}, size_t{4}, size_t{3}, size_t{12}, size_t{24}, size_t{48},
                   size_t{4095}, size_t{4097}, size_t{3} << 20, SIZE_MAX}) {
    void *out = kSentinel;
    int rc = posix_memalign(&out, opaque_size(a), opaque_size(64));
    EXPECT_EQ(rc, EINVAL) << "posix_memalign(alignment " << a << ")";
    EXPECT_EQ(out, kSentinel) << "posix_memalign(alignment " << a << ") wrote the output";
    if (rc == 0 && out != kSentinel) free(out);
  }
  expect_usable();
}

TEST(Errors, AlignedAllocBadAlignmentIsNullEINVAL) {
  for (size_t a : {size_t{0}, size_t{3}, size_t{12}, size_t{24}, size_t{48}, size_t{4097}, size_t{3} << 20,
                   SIZE_MAX}) {
    errno = 0;
    void *p = aligned_alloc(opaque_size(a), opaque_size(64));
    EXPECT_EQ(p, nullptr) << "aligned_alloc(alignment " << a << ")";
    EXPECT_EQ(errno, EINVAL) << "aligned_alloc(alignment " << a << ")";
    if (p) free(p);
  }
  expect_usable();
}

TEST(Errors, MemalignBadAlignmentIsNullEINVAL) {
  for (size_t a : {size_t{3}, size_t{12}, size_t{24}, size_t{48}, size_t{4097}, size_t{3} << 20, SIZE_MAX}) {
    errno = 0;
    void *p = memalign(opaque_size(a), opaque_size(64));
    EXPECT_EQ(p, nullptr) << "memalign(alignment " << a << ")";
    EXPECT_EQ(errno, EINVAL) << "memalign(alignment " << a << ")";
    if (p) free(p);
  }
  expect_usable();
}

TEST(Errors, FreePreservesErrno) {
  const FreeSizedFn free_sized = free_sized_fn();
  for (size_t n : {0ul, 8ul, 100ul, 4096ul, 32768ul, 40000ul, kMiB, 20 * kMiB}) {
    for (int round = 0; round < 3; ++round) {
      void *p = malloc(opaque_size(n));
      errno = 12345;
      free(p);
      EXPECT_EQ(errno, 12345) << "free of a " << n << "-byte block changed errno";
      void *q = ::operator new(opaque_size(n + 1));
      errno = 23456;
      ::operator delete(q);
      EXPECT_EQ(errno, 23456) << "operator delete of a " << n + 1 << "-byte block changed errno";
      if (free_sized) {
        void *r = malloc(opaque_size(n + 1));
        errno = 3456;
        free_sized(r, n + 1);
        EXPECT_EQ(errno, 3456) << "free_sized of a " << n + 1 << "-byte block changed errno";
      }
    }
  }
  errno = 777;
  free(nullptr);
  EXPECT_EQ(errno, 777);
  // Releasing memory to the OS (munmap/madvise inside free) keeps errno too:
  // free many large blocks in a row.
  std::vector<void *> big;
  for (int i = 0; i < 16; ++i) big.push_back(malloc(opaque_size(4 * kMiB + i * kPage)));
  for (void *p : big) {
    errno = 4242;
    free(p);
    ASSERT_EQ(errno, 4242);
  }
}

TEST(Errors, UsableAfterFailures) {
  // A failure, then every size range still allocates.
  errno = 0;
  EXPECT_EQ(malloc(opaque_size(SIZE_MAX)), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  expect_usable();
}

namespace {
int g_handler_calls = 0;
void counting_handler() {
  if (++g_handler_calls >= 3) std::set_new_handler(nullptr);
}
}  // namespace

TEST(Errors, OperatorNewCallsNewHandlerThenThrowsBadAlloc) {
  struct Case {
    const char *name;
    void (*call)(size_t);
  };
  const Case cases[] = {
      {"new", [](size_t n) { escape(::operator new(n)); }},
      {"new[]", [](size_t n) { escape(::operator new[](n)); }},
      {"new(align 64)", [](size_t n) { escape(::operator new(n, std::align_val_t{64})); }},
      {"new[](align 1 MiB)", [](size_t n) { escape(::operator new[](n, std::align_val_t{kMiB})); }},
  };
  for (const Case &c : cases) {
    for (size_t n : {SIZE_MAX, SIZE_MAX / 2 + 1, size_t{1} << 50}) {
      g_handler_calls = 0;
      std::set_new_handler(counting_handler);
      bool threw = false;
      try {
        c.call(opaque_size(n));
      } catch (const std::bad_alloc &) {
        threw = true;
      }
      std::set_new_handler(nullptr);
      EXPECT_TRUE(threw) << "operator " << c.name << "(" << n << ") did not throw bad_alloc";
      EXPECT_EQ(g_handler_calls, 3) << "operator " << c.name << "(" << n
                                    << ") must call the new-handler until it is removed";
    }
  }
  // Without a handler: throws at once.
  bool threw = false;
  try {
    escape(::operator new(opaque_size(SIZE_MAX)));
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  EXPECT_TRUE(threw);
  expect_usable();
}

namespace {
void *g_reserve = nullptr;
int g_freeing_calls = 0;
// A handler that frees a reserve and lets operator new retry.
void freeing_handler() {
  ++g_freeing_calls;
  free(g_reserve);
  g_reserve = nullptr;
  std::set_new_handler(nullptr);
}
}  // namespace

TEST(Errors, NewHandlerThatThrowsPropagates) {
  std::set_new_handler([] { throw std::bad_alloc(); });
  bool threw = false;
  try {
    escape(::operator new(opaque_size(SIZE_MAX)));
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  std::set_new_handler(nullptr);
  EXPECT_TRUE(threw);
  // A handler that frees memory and returns: operator new retries and throws
  // once the handler is removed.
  g_reserve = malloc(opaque_size(kMiB));
  g_freeing_calls = 0;
  std::set_new_handler(freeing_handler);
  threw = false;
  try {
    escape(::operator new(opaque_size(SIZE_MAX - 4096)));
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  std::set_new_handler(nullptr);
  EXPECT_TRUE(threw);
  EXPECT_EQ(g_freeing_calls, 1);
  EXPECT_EQ(g_reserve, nullptr);
}

TEST(Errors, NothrowNewReturnsNullptr) {
  for (size_t n : {SIZE_MAX, SIZE_MAX / 2 + 1, size_t{1} << 50}) {
    EXPECT_EQ(::operator new(opaque_size(n), std::nothrow), nullptr);
    EXPECT_EQ(::operator new[](opaque_size(n), std::nothrow), nullptr);
    EXPECT_EQ(::operator new(opaque_size(n), std::align_val_t{256}, std::nothrow), nullptr);
    EXPECT_EQ(::operator new[](opaque_size(n), std::align_val_t{kMiB}, std::nothrow), nullptr);
  }
  // The nothrow forms also call the new-handler before giving up.
  g_handler_calls = 0;
  std::set_new_handler(counting_handler);
  EXPECT_EQ(::operator new(opaque_size(SIZE_MAX), std::nothrow), nullptr);
  std::set_new_handler(nullptr);
  EXPECT_EQ(g_handler_calls, 3);
  expect_usable();
}

// A new-handler that throws std::bad_alloc: the nothrow forms catch it and
// return nullptr, the throwing forms let it through.
TEST(Errors, NothrowNewCatchesAThrowingHandler) {
  std::set_new_handler([] { throw std::bad_alloc(); });
  EXPECT_EQ(::operator new(opaque_size(SIZE_MAX), std::nothrow), nullptr);
  EXPECT_EQ(::operator new[](opaque_size(SIZE_MAX), std::align_val_t{64}, std::nothrow), nullptr);
  EXPECT_THROW((void)::operator new(opaque_size(SIZE_MAX)), std::bad_alloc);
  std::set_new_handler(nullptr);
  expect_usable();
}

// Real exhaustion: under an address-space limit, allocation fails with
// NULL/ENOMEM (not a crash), operator new throws, and once memory is freed
// the allocator serves requests again. Runs in a child process.
TEST(Errors, OutOfMemoryUnderRlimitRecovers) {
  EXPECT_EXIT(
      {
        // Warm up every size range so the allocator's own structures exist.
        expect_usable();
        struct rlimit lim {};
        getrlimit(RLIMIT_AS, &lim);
        lim.rlim_cur = vm_bytes() + 256 * kMiB;
        if (setrlimit(RLIMIT_AS, &lim) != 0) _exit(10);
        std::vector<void *> held;
        held.reserve(1 << 20);
        int code = 0;
        // Large blocks until failure.
        for (;;) {
          errno = 0;
          void *p = malloc(opaque_size(kMiB));
          if (!p) {
            if (errno != ENOMEM) code = 11;
            break;
          }
          memset(p, 1, 4096);
          held.push_back(p);
          if (held.size() > 4096) { code = 12; break; }  // the limit did not bite
        }
        // Small blocks until failure too (page heap and metadata exhausted).
        size_t small = 0;
        for (; code == 0;) {
          errno = 0;
          void *p = malloc(opaque_size(200));
          if (!p) {
            if (errno != ENOMEM) code = 13;
            break;
          }
          if (held.size() < held.capacity()) held.push_back(p);
          if (++small > (size_t{1} << 22)) { code = 14; break; }
        }
        if (code == 0) {
          bool threw = false;
          try {
            escape(::operator new(opaque_size(64 * kMiB)));
          } catch (const std::bad_alloc &) {
            threw = true;
          }
          if (!threw) code = 15;
          if (::operator new(opaque_size(64 * kMiB), std::nothrow) != nullptr) code = 16;
        }
        for (void *p : held) free(p);
        held.clear();
        // Usable again, within the same limit.
        for (int i = 0; i < 100 && code == 0; ++i) {
          void *a = malloc(opaque_size(100));
          void *b = malloc(opaque_size(2 * kMiB));
          if (!a || !b) code = 17;
          if (b) memset(b, 2, 2 * kMiB);
          free(a);
          free(b);
        }
        _exit(code);
      },
      ::testing::ExitedWithCode(0), "");
}
