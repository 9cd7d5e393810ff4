// Misuse: double frees and frees of pointers spanalloc never returned must
// print one line naming the pointer and the fault, then abort(). These are
// spanalloc-specific (the C library's messages differ).
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include <gtest/gtest.h>

#include "api_common.h"

using namespace api;

namespace {

// The message for `p`: "spanalloc: free(0x...): <fault>" on one line (the
// function may be named otherwise, e.g. realloc; the pointer may be printed
// with leading zeros).
std::string message_for(const void *p, const char *fault) {
  char hex[32];
  snprintf(hex, sizeof hex, "%lx", static_cast<unsigned long>(reinterpret_cast<uintptr_t>(p)));
  return std::string("spanalloc: [^\n]*0x0*") + hex + "[^0-9a-fx][^\n]*" + fault;
}
const char *const kDouble = "double free";
const char *const kNotOurs = "invalid pointer \\(not allocated by spanalloc\\)";
const char *const kInterior = "invalid pointer \\(not the start of an object\\)";
const char *const kAnyInvalid = "(double free|invalid pointer)";

const ::testing::KilledBySignal kAbort(SIGABRT);

char g_static_buffer[256];

}  // namespace

class Misuse : public ::testing::Test {
 protected:
  // "fast": the child is a fork of this process, so the pointers in the
  // expected messages are the child's too. No other threads run here.
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "fast"); }
};

TEST_F(Misuse, DoubleFreeSmall) {
  for (size_t n : {8ul, 16ul, 100ul, 1024ul, 4096ul, 32768ul}) {
    void *p = malloc(opaque_size(n));
    ASSERT_NE(p, nullptr);
    EXPECT_EXIT(
        {
          void *again = opaque(p);
          free(p);
          free(again);
        },
        kAbort, message_for(p, kDouble))
        << "size " << n;
    free(p);  // the parent still owns it
  }
}

TEST_F(Misuse, DoubleFreeLarge) {
  for (size_t n : {32769ul, 100000ul, 4 * kMiB}) {
    void *p = malloc(opaque_size(n));
    ASSERT_NE(p, nullptr);
    EXPECT_EXIT(
        {
          void *again = opaque(p);
          free(p);
          free(again);
        },
        kAbort, message_for(p, kAnyInvalid))
        << "size " << n;
    free(p);
  }
}

TEST_F(Misuse, DoubleFreeAfterOtherActivity) {
  // p freed, other sizes allocated and freed in between, then p again.
  void *p = malloc(opaque_size(48));
  ASSERT_NE(p, nullptr);
  EXPECT_EXIT(
      {
        void *again = opaque(p);
        free(p);
        for (int i = 0; i < 100; ++i) free(malloc(opaque_size(1000 + i)));
        free(again);
      },
      kAbort, message_for(p, kDouble));
  free(p);
}

TEST_F(Misuse, DoubleFreeThroughOtherEntryPoints) {
  void *p = malloc(opaque_size(64));
  ASSERT_NE(p, nullptr);
  EXPECT_EXIT(
      {
        void *again = opaque(p);
        ::operator delete(p);
        ::operator delete(again);
      },
      kAbort, message_for(p, kDouble));
  EXPECT_EXIT(
      {
        void *again = opaque(p);
        free(p);
        if (FreeSizedFn fs = free_sized_fn()) fs(again, 64);
        else free(again);
      },
      kAbort, message_for(p, kDouble));
  EXPECT_EXIT(
      {
        void *again = opaque(p);
        free(p);
        escape(realloc(again, 128));
      },
      kAbort, message_for(p, kAnyInvalid));
  EXPECT_EXIT(
      {
        void *again = opaque(p);
        ::operator delete[](p, std::align_val_t{16});
        ::operator delete[](again, std::align_val_t{16});
      },
      kAbort, message_for(p, kDouble));
  free(p);
}

TEST_F(Misuse, FreeStackPointer) {
  char buf[128];
  memset(buf, 0, sizeof buf);
  void *p = opaque(static_cast<void *>(buf + 16));
  EXPECT_EXIT(free(p), kAbort, message_for(p, kAnyInvalid));
  EXPECT_EXIT(::operator delete(p), kAbort, message_for(p, kAnyInvalid));
  EXPECT_EXIT(escape(realloc(p, 10)), kAbort, message_for(p, kAnyInvalid));
}

TEST_F(Misuse, FreeStaticPointer) {
  void *p = opaque(static_cast<void *>(g_static_buffer));
  EXPECT_EXIT(free(p), kAbort, message_for(p, kNotOurs));
}

TEST_F(Misuse, FreeMmapPointer) {
  const size_t len = 256 * kKiB;
  void *m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  memset(m, 1, len);
  for (size_t off : {size_t{0}, size_t{16}, kPage, 64 * kKiB}) {
    void *p = static_cast<char *>(m) + off;
    EXPECT_EXIT(free(opaque(p)), kAbort, message_for(p, kNotOurs)) << "offset " << off;
  }
  munmap(m, len);
}

TEST_F(Misuse, FreeWildPointers) {
  for (uintptr_t a : {uintptr_t{0x1000}, uintptr_t{0x10}, uintptr_t{0x7ffdeadbe000}, uintptr_t{0x7fffffffe000},
                      uintptr_t{0x00007f0000001230}, uintptr_t{0xffff800000000000}, uintptr_t{0xfffffffffffff000}}) {
    void *p = reinterpret_cast<void *>(a);
    EXPECT_EXIT(free(opaque(p)), kAbort, message_for(p, kNotOurs)) << "address " << p;
  }
}

TEST_F(Misuse, FreeInteriorPointerSmall) {
  for (size_t n : {32ul, 64ul, 256ul, 3000ul, 32768ul}) {
    char *p = static_cast<char *>(malloc(opaque_size(n)));
    ASSERT_NE(p, nullptr);
    for (size_t off : {size_t{1}, size_t{8}, size_t{16}, n / 2, n - 1}) {
      if (off == 0 || off >= n) continue;
      void *q = p + off;
      EXPECT_EXIT(free(opaque(q)), kAbort, message_for(q, kInterior)) << "size " << n << " offset " << off;
    }
    free(p);
  }
}

TEST_F(Misuse, FreeInteriorPointerLarge) {
  for (size_t n : {40000ul, kMiB, 8 * kMiB}) {
    char *p = static_cast<char *>(malloc(opaque_size(n)));
    ASSERT_NE(p, nullptr);
    for (size_t off : {size_t{16}, size_t{100}, kPage, 8 * kKiB, n / 2, n - 8}) {
      void *q = p + off;
      EXPECT_EXIT(free(opaque(q)), kAbort, message_for(q, kInterior)) << "size " << n << " offset " << off;
    }
    free(p);
  }
}

TEST_F(Misuse, InteriorPointerThroughOtherEntryPoints) {
  char *p = static_cast<char *>(malloc(opaque_size(200)));
  ASSERT_NE(p, nullptr);
  void *q = p + 16;
  EXPECT_EXIT(::operator delete(opaque(q)), kAbort, message_for(q, kInterior));
  EXPECT_EXIT(escape(realloc(opaque(q), 400)), kAbort, message_for(q, kInterior));
  EXPECT_EXIT(
      {
        if (FreeSizedFn fs = free_sized_fn()) fs(opaque(q), 100);
        else free(opaque(q));
      },
      kAbort, message_for(q, kInterior));
  free(p);
}

TEST_F(Misuse, MessageIsOneLine) {
  // Everything the allocator prints for a fault fits on one line: the regex
  // anchors the message between line starts and a final newline.
  void *p = malloc(opaque_size(24));
  ASSERT_NE(p, nullptr);
  EXPECT_EXIT(
      {
        fflush(stderr);
        void *again = opaque(p);
        free(p);
        free(again);
      },
      kAbort, "(^|\n)" + message_for(p, kDouble) + "\n");
  free(p);
}

TEST_F(Misuse, UsableAfterENOMEM) {
  for (int i = 0; i < 10; ++i) {
    errno = 0;
    EXPECT_EQ(malloc(opaque_size(SIZE_MAX - i)), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_EQ(calloc(opaque_size(SIZE_MAX / 4), 8), nullptr);
    EXPECT_EQ(::operator new(opaque_size(SIZE_MAX), std::nothrow), nullptr);
  }
  // Everything still works, including the fault detection.
  void *p = malloc(opaque_size(100));
  ASSERT_NE(p, nullptr);
  memset(p, 1, 100);
  void *big = malloc(opaque_size(10 * kMiB));
  ASSERT_NE(big, nullptr);
  memset(big, 2, 10 * kMiB);
  free(big);
  EXPECT_EXIT(
      {
        void *again = opaque(p);
        free(p);
        free(again);
      },
      kAbort, message_for(p, kDouble));
  free(p);
}
