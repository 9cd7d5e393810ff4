// Misuse: double frees (however far apart, on whichever thread), frees of
// pointers spanalloc never returned, writes over a free block's link (after
// free, or overflowing from the block before it), use of a freed block and
// sizes that do not match the block must print one line naming the fault and
// the pointer, then abort(). These are spanalloc-specific (the C library's
// messages differ).
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <cstdio>
#include <cstring>
#include <atomic>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "api_common.h"

using namespace api;

namespace {

// The message for `p`: one line "spanalloc: <fault> of 0x... (<function>:
// <what is known>)" (the pointer may be printed with leading zeros); `detail`
// is matched anywhere in the parenthesis.
std::string message_for(const void *p, const char *fault, const std::string &detail = "") {
  char hex[32];
  snprintf(hex, sizeof hex, "%lx", static_cast<unsigned long>(reinterpret_cast<uintptr_t>(p)));
  return std::string("spanalloc: ") + fault + " of 0x0*" + hex + " \\([^\n]*" + detail;
}
const char *const kDouble = "double free";
const char *const kInvalid = "invalid pointer";
const char *const kNotOurs = "not allocated by spanalloc";
const char *const kInterior = "not the start of an object";
const char *const kAnyInvalid = "(double free|invalid pointer)";
const char *const kCorrupt = "free-list corruption";
// A block freed twice by one thread: on its thread cache's list; with
// SPANALLOC_CACHE=cpu on its CPU's list, or flushed already (a CPU's share
// of a large class is a couple of blocks).
const char *const kOnOwnList =
    "-byte block, already (on this (thread|CPU)'s free list|free: freed by another thread, or back in a central batch)";
const char *const kCorruptDetail = "free, its link overwritten by a write after free or an overflow";

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
  EXPECT_EXIT(free(p), kAbort, message_for(p, kInvalid, kNotOurs));
}

TEST_F(Misuse, FreeMmapPointer) {
  const size_t len = 256 * kKiB;
  void *m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  memset(m, 1, len);
  for (size_t off : {size_t{0}, size_t{16}, kPage, 64 * kKiB}) {
    void *p = static_cast<char *>(m) + off;
    EXPECT_EXIT(free(opaque(p)), kAbort, message_for(p, kInvalid, kNotOurs)) << "offset " << off;
  }
  munmap(m, len);
}

TEST_F(Misuse, FreeWildPointers) {
  for (uintptr_t a : {uintptr_t{0x1000}, uintptr_t{0x10}, uintptr_t{0x7ffdeadbe000}, uintptr_t{0x7fffffffe000},
                      uintptr_t{0x00007f0000001230}, uintptr_t{0xffff800000000000}, uintptr_t{0xfffffffffffff000}}) {
    void *p = reinterpret_cast<void *>(a);
    EXPECT_EXIT(free(opaque(p)), kAbort, message_for(p, kInvalid, kNotOurs)) << "address " << p;
  }
}

TEST_F(Misuse, FreeInteriorPointerSmall) {
  for (size_t n : {32ul, 64ul, 256ul, 3000ul, 32768ul}) {
    char *p = static_cast<char *>(malloc(opaque_size(n)));
    ASSERT_NE(p, nullptr);
    for (size_t off : {size_t{1}, size_t{8}, size_t{16}, n / 2, n - 1}) {
      if (off == 0 || off >= n) continue;
      void *q = p + off;
      EXPECT_EXIT(free(opaque(q)), kAbort, message_for(q, kInvalid, kInterior)) << "size " << n << " offset " << off;
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
      EXPECT_EXIT(free(opaque(q)), kAbort, message_for(q, kInvalid, kInterior)) << "size " << n << " offset " << off;
    }
    free(p);
  }
}

// A slot at a multiple of the size past a span's last object (its tail):
// 48 and 80 B objects fill a one-page (8 KiB) span up to byte 8160, and
// 8160 is a multiple of both. Pushed on a free list it would be handed out
// overlapping the next span.
TEST_F(Misuse, FreePointerInASpansTail) {
  for (size_t n : {48ul, 80ul}) {
    char *p = static_cast<char *>(malloc(opaque_size(n)));
    ASSERT_NE(p, nullptr);
    char *span = reinterpret_cast<char *>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{8191});
    void *q = span + (8192 / n) * n;
    ASSERT_EQ((8192 / n) * n, 8160u);
    EXPECT_EXIT(free(opaque(q)), kAbort, message_for(q, kInvalid, kInterior)) << "size " << n;
    EXPECT_EXIT(escape(realloc(opaque(q), n)), kAbort, message_for(q, kInvalid, kInterior)) << "size " << n;
    free(p);
  }
}

TEST_F(Misuse, InteriorPointerThroughOtherEntryPoints) {
  char *p = static_cast<char *>(malloc(opaque_size(200)));
  ASSERT_NE(p, nullptr);
  void *q = p + 16;
  EXPECT_EXIT(::operator delete(opaque(q)), kAbort, message_for(q, kInvalid, kInterior));
  EXPECT_EXIT(escape(realloc(opaque(q), 400)), kAbort, message_for(q, kInvalid, kInterior));
  EXPECT_EXIT(
      {
        if (FreeSizedFn fs = free_sized_fn()) fs(opaque(q), 100);
        else free(opaque(q));
      },
      kAbort, message_for(q, kInvalid, kInterior));
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
      kAbort, "(^|\n)" + message_for(p, kDouble) + "\\)\n");
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

// ---- issue 9: the cases that once went through ------------------------------

TEST_F(Misuse, DoubleFreeWithOtherFreesBetween) {
  // free(p); free(q); free(r); free(p): p is no longer the top of the list.
  for (size_t n : {16ul, 48ul, 1000ul, 20000ul}) {
    void *p = malloc(opaque_size(n));
    void *q = malloc(opaque_size(n));
    void *r = malloc(opaque_size(n));
    ASSERT_TRUE(p && q && r);
    EXPECT_EXIT(
        {
          void *again = opaque(p);
          free(p);
          free(q);
          free(r);
          free(again);
        },
        kAbort, message_for(p, kDouble, kOnOwnList))
        << "size " << n;
    // Frees of other sizes, and mallocs, in between.
    EXPECT_EXIT(
        {
          void *again = opaque(p);
          free(p);
          free(q);
          for (int i = 0; i < 50; ++i) free(malloc(opaque_size(8 + 16 * i)));
          escape(malloc(opaque_size(n)));  // takes q back; p stays free
          free(r);
          free(again);
        },
        kAbort, message_for(p, kDouble))
        << "size " << n;
    free(p);
    free(q);
    free(r);
  }
}

TEST_F(Misuse, DoubleFreeByAnotherThread) {
  void *p = malloc(opaque_size(64));
  ASSERT_NE(p, nullptr);
  // The other thread frees p and stays alive, p in its cache.
  EXPECT_EXIT(
      {
        std::atomic<int> stage{0};
        std::thread t([&] {
          free(opaque(p));
          stage = 1;
          while (stage.load() != 2) std::this_thread::yield();
        });
        while (stage.load() != 1) std::this_thread::yield();
        free(opaque(p));
      },
      kAbort, message_for(p, kDouble, "64-byte block, already (free: freed by another thread|on this CPU's free list)"));
  // The other thread frees p and exits (its cache goes back to the central list).
  EXPECT_EXIT(
      {
        std::thread t([&] { free(opaque(p)); });
        t.join();
        free(opaque(p));
      },
      kAbort, message_for(p, kDouble));
  // This thread frees p, another frees it again.
  EXPECT_EXIT(
      {
        free(opaque(p));
        std::thread t([&] { free(opaque(p)); });
        t.join();
      },
      kAbort, message_for(p, kDouble));
  free(p);
}

TEST_F(Misuse, WriteAfterFreeOverTheLink) {
  for (size_t n : {16ul, 32ul, 256ul, 4096ul}) {
    void *p = malloc(opaque_size(n));
    ASSERT_NE(p, nullptr);
    for (int byte : {0x41, 0x00, 0xff}) {
      EXPECT_EXIT(
          {
            free(opaque(p));
            memset(opaque(p), byte, 16);
            escape(malloc(opaque_size(n)));
            escape(malloc(opaque_size(n)));
          },
          kAbort, message_for(p, kCorrupt, kCorruptDetail))
          << "size " << n << " byte " << byte;
    }
    // A pointer written over the link (a dangling object still in use).
    EXPECT_EXIT(
        {
          void *other = malloc(opaque_size(n));
          free(opaque(p));
          *static_cast<void **>(opaque(p)) = other;
          escape(malloc(opaque_size(n)));
        },
        kAbort, message_for(p, kCorrupt));
    free(p);
  }
}

TEST_F(Misuse, OverflowIntoFreeNeighbour) {
  // Two neighbours a, b of one class; b freed, then 16 bytes written past a.
  for (size_t n : {32ul, 48ul, 128ul}) {
    std::vector<char *> blocks;
    char *a = nullptr, *b = nullptr;
    for (int i = 0; i < 512 && a == nullptr; ++i) {
      blocks.push_back(static_cast<char *>(malloc(opaque_size(n))));
      for (char *x : blocks)
        if (blocks.back() == x + n) a = x, b = blocks.back();
    }
    ASSERT_NE(a, nullptr) << "no two neighbouring blocks of " << n << " bytes";
    EXPECT_EXIT(
        {
          free(opaque(b));
          memset(opaque(a), 0x41, n + 16);
          escape(malloc(opaque_size(n)));
        },
        kAbort, message_for(b, kCorrupt, kCorruptDetail))
        << "size " << n;
    for (char *x : blocks) free(x);
  }
}

TEST_F(Misuse, UsableSizeOfFreedBlock) {
  void *p = malloc(opaque_size(48));
  ASSERT_NE(p, nullptr);
  EXPECT_EXIT(
      {
        free(opaque(p));
        escape(reinterpret_cast<void *>(malloc_usable_size(opaque(p))));
      },
      kAbort, message_for(p, "use after free", "48-byte block, already free"));
  free(p);
  void *big = malloc(opaque_size(200000));
  ASSERT_NE(big, nullptr);
  EXPECT_EXIT(
      {
        free(opaque(big));
        escape(reinterpret_cast<void *>(malloc_usable_size(opaque(big))));
      },
      kAbort, message_for(big, "(use after free|invalid pointer)"));
  free(big);
}

// realloc may copy a growing large block into a committed free span: a
// freed large block is still reported, whatever its new size, with such
// spans about.
TEST_F(Misuse, ReallocOfFreedLargeBlock) {
  size_t room_bytes = opaque_size(8 << 20);
  void *room = malloc(room_bytes);
  ASSERT_NE(room, nullptr);
  memset(room, 1, room_bytes);
  void *p = malloc(opaque_size(256 << 10));
  ASSERT_NE(p, nullptr);
  free(room);
  for (size_t n : {200ul << 10, 256ul << 10, 2ul << 20}) {  // shrinks, fits, grows
    EXPECT_EXIT(
        {
          free(opaque(p));
          escape(realloc(opaque(p), opaque_size(n)));
        },
        kAbort, message_for(p, kAnyInvalid))
        << "new size " << n;
  }
  free(p);
}

TEST_F(Misuse, ReallocOfFreedBlock) {
  void *p = malloc(opaque_size(48));
  ASSERT_NE(p, nullptr);
  for (size_t n : {40ul, 48ul, 8ul, 1000ul}) {  // fits (inline path), shrinks, grows
    EXPECT_EXIT(
        {
          free(opaque(p));
          escape(realloc(opaque(p), opaque_size(n)));
        },
        kAbort, message_for(p, kDouble, "realloc: 48-byte block, already free"))
        << "new size " << n;
  }
  free(p);
}

TEST_F(Misuse, FreeSizedMismatch) {
  FreeSizedFn fs = free_sized_fn();
  ASSERT_NE(fs, nullptr) << "free_sized not exported";
  void *p = malloc(opaque_size(48));
  ASSERT_NE(p, nullptr);
  for (size_t wrong : {100ul, 8ul, 0ul, 4096ul}) {
    EXPECT_EXIT(fs(opaque(p), opaque_size(wrong)), kAbort,
                message_for(p, "size mismatch", "free_sized: 48-byte block, freed with size " + std::to_string(wrong) + "\\)"))
        << "size " << wrong;
  }
  void *big = malloc(opaque_size(100000));
  ASSERT_NE(big, nullptr);
  EXPECT_EXIT(fs(opaque(big), opaque_size(1000)), kAbort, message_for(big, "size mismatch", "freed with size 1000"));
  // The sizes that do match: what was asked for, and a realloc that kept the block.
  fs(opaque(p), opaque_size(48));
  fs(opaque(big), opaque_size(100000));
  void *q = malloc(opaque_size(40));
  ASSERT_NE(q, nullptr);
  fs(opaque(q), opaque_size(33));
  void *r = realloc(malloc(opaque_size(1000)), opaque_size(600));
  ASSERT_NE(r, nullptr);
  fs(opaque(r), opaque_size(600));
}

TEST_F(Misuse, SizedDeleteMismatchWithFullChecks) {
  // SPANALLOC_CHECKS is read at start-up: the child is a fresh run of this
  // binary with the variable set.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  setenv("SPANALLOC_CHECKS", "full", 1);
  EXPECT_EXIT(
      {
        void *p = ::operator new(opaque_size(48));
        ::operator delete(opaque(p), opaque_size(200));
      },
      kAbort, "spanalloc: size mismatch of 0x[0-9a-f]+ \\(operator delete: 48-byte block, freed with size 200\\)");
  EXPECT_EXIT(
      {
        void *p = ::operator new[](opaque_size(100000));
        ::operator delete[](opaque(p), opaque_size(10));
      },
      kAbort, "spanalloc: size mismatch of 0x[0-9a-f]+ \\(operator delete\\[\\]: [0-9]+-byte block, freed with size 10\\)");
  // Matching sizes pass the checks: new, new[] with a cookie, aligned new.
  EXPECT_EXIT(
      {
        for (size_t n : {1ul, 48ul, 1000ul, 5000ul, 40000ul, 3000000ul}) {
          void *p = ::operator new(opaque_size(n));
          ::operator delete(opaque(p), opaque_size(n));
          void *a = ::operator new(opaque_size(n), std::align_val_t{256});
          ::operator delete(opaque(a), opaque_size(n), std::align_val_t{256});
        }
        std::string *arr = new std::string[opaque_size(7)];
        delete[] opaque(arr);
        fprintf(stderr, "sized deletes passed\n");
        exit(0);
      },
      ::testing::ExitedWithCode(0), "sized deletes passed");
  unsetenv("SPANALLOC_CHECKS");
}
