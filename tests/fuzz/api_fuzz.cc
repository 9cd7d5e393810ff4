// libFuzzer harness for the whole allocation API, against a shadow model.
//
// The input is a program of operations on 64 slots: malloc, calloc,
// realloc, free, free_sized, aligned_alloc, posix_memalign, usable size,
// release of free memory, and requests that must fail (absurd sizes,
// overflowing products, bad alignments). The model knows each live block's
// requested size, alignment, usable size and contents (every usable byte
// holds the block's own fill byte), and checks after every operation:
//   - a block is aligned to what was asked and to 16 (8 for blocks of 8 B);
//   - usable size >= requested, and within the size-class bound (12.5%, or
//     16 B below 128 B; whole pages for large blocks);
//   - live blocks never overlap (usable ranges);
//   - contents survive until the block is freed, realloc keeps the first
//     min(old, new) bytes, calloc returns zeroes;
//   - failures return NULL with errno ENOMEM/EINVAL and leave blocks alone;
//   - the statistics' large bytes equal the model's, small bytes cover it.
// At the end of every input all blocks are freed, the page heap's and every
// central list's Validate() must pass, and no large byte may stay in use.
//
// Built with clang -fsanitize=fuzzer,address (tests/fuzz/README.md): the
// harness calls the spanalloc_* entry points, so ASan keeps the C library's
// malloc for itself and the harness while spanalloc runs as a library.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <map>

#include "central_list.h"
#include "common.h"
#include "fuzz_input.h"
#include "page_heap.h"
#include "page_map.h"
#include "spanalloc.h"

namespace {

using spanalloc::kMaxSmallSize;
using spanalloc::kPageSize;

[[noreturn]] void Fail(const char *what, const void *p, size_t a, size_t b) {
  fprintf(stderr, "api_fuzz: %s (block %p, %zu, %zu)\n", what, p, a, b);
  abort();
}
#define CHECK(cond, p, a, b) \
  do {                       \
    if (!(cond)) Fail(#cond, p, size_t(a), size_t(b)); \
  } while (0)

class Input : public fuzz::ByteReader {
 public:
  using ByteReader::ByteReader;
  // Sizes of every range: tiny, small, medium and large.
  size_t size() {
    uint8_t kind = u8();
    switch (kind >> 6) {
      case 0: return kind & 63;
      case 1: return u16() % 1025;
      case 2: return u16() % (kMaxSmallSize + 8000);
      default: return u32() % (kind & 32 ? size_t{4} << 20 : size_t{256} << 10);
    }
  }
  size_t align() { return size_t{1} << (u8() % 21); }  // 1 B .. 1 MiB
};

struct Block {
  uint8_t *p = nullptr;
  size_t size = 0;    // requested
  size_t usable = 0;  // spanalloc_usable_size at allocation
  size_t align = 0;   // asked for (1 when none)
  uint8_t fill = 0;   // every usable byte holds this
};

constexpr int kSlots = 64;
constexpr size_t kMaxLive = size_t{256} << 20;  // keeps the fuzzer's memory bounded

class Model {
 public:
  ~Model() { FreeAll(); }

  void Run(Input &in) {
    while (!in.done()) {
      uint8_t op = in.u8();
      Block &b = slots_[in.u8() % kSlots];
      if (trace_) fprintf(stderr, "op %d slot %d (%p, %zu bytes, align %zu)\n", op % 13, int(&b - slots_), b.p, b.size, b.align);
      switch (op % 13) {
        case 0: Alloc(b, in.size(), 1, kMalloc, in); break;
        case 1: Alloc(b, 0, 1, kCalloc, in); break;
        case 2: Realloc(b, in.size()); break;
        case 3: Free(b, false); break;
        case 4: Free(b, true); break;
        case 5: Alloc(b, in.size(), in.align(), kAligned, in); break;
        case 6: Alloc(b, in.size(), in.align(), kPosix, in); break;
        case 7: Touch(b); break;
        case 8: ReallocZero(b); break;
        case 9: ReleaseAndCount(); break;
        case 10: MustFail(in); break;
        case 11: Realloc(b, in.u16() % 64); break;  // shrink-and-grow churn of small blocks
        case 12: Alloc(b, in.u16() % 2048, 1, kMalloc, in); break;
      }
    }
  }

  void FreeAll() {
    for (Block &b : slots_) Free(b, false);
  }

 private:
  enum Kind { kMalloc, kCalloc, kAligned, kPosix };

  static size_t Natural(size_t usable) { return usable >= 16 ? 16 : 8; }
  // Most usable bytes a fresh block of n bytes (natural alignment) may have.
  static size_t Bound(size_t n) {
    if (n > kMaxSmallSize) return (n + kPageSize - 1) / kPageSize * kPageSize;
    size_t b = n <= 128 ? n + 15 : n + n / 7 + 1;
    return b < 16 ? 16 : b;
  }

  // Whether n bytes at p all hold fill: memcmp against a buffer of fill
  // bytes (a byte loop would cost a coverage callback per byte).
  static bool AllAre(const uint8_t *p, size_t n, uint8_t fill) {
    static uint8_t ref[64 * 1024];
    memset(ref, fill, n < sizeof ref ? n : sizeof ref);
    for (size_t at = 0; at < n; at += sizeof ref)
      if (memcmp(p + at, ref, n - at < sizeof ref ? n - at : sizeof ref) != 0) return false;
    return true;
  }
  void Check(const Block &b) {
    if (!AllAre(b.p, b.usable, b.fill)) Fail("contents changed while the block was live", b.p, b.usable, b.fill);
  }
  void Fill(Block &b) {
    b.fill = uint8_t(++counter_ % 255 + 1);
    memset(b.p, b.fill, b.usable);
  }
  // Records a new block: alignment, usable size, no overlap.
  void Adopt(Block &b, uint8_t *p, size_t size, size_t align) {
    size_t usable = spanalloc_usable_size(p);
    CHECK(usable >= size, p, usable, size);
    CHECK(usable > 0, p, usable, size);
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    CHECK(a % Natural(usable) == 0, p, a, usable);
    CHECK(a % align == 0, p, a, align);
    auto next = live_.lower_bound(a);
    CHECK(next == live_.end() || next->first >= a + usable, p, next->first, usable);
    if (next != live_.begin()) {
      auto prev = std::prev(next);
      CHECK(prev->second <= a, p, prev->first, prev->second);
    }
    live_[a] = a + usable;
    bytes_ += usable;
    b = Block{p, size, usable, align, 0};
  }
  void Forget(Block &b) {
    live_.erase(reinterpret_cast<uintptr_t>(b.p));
    bytes_ -= b.usable;
    b = Block{};
  }

  void Alloc(Block &b, size_t size, size_t align, Kind kind, Input &in) {
    Free(b, false);
    size_t count = 1;
    if (kind == kCalloc) {
      count = in.u8() % 65;
      size = in.size() / (count ? count : 1) + (in.u8() & 3);
    }
    if (bytes_ + size * count > kMaxLive) return;
    errno = 0;
    void *p = nullptr;
    switch (kind) {
      case kMalloc: p = spanalloc_malloc(size); break;
      case kCalloc: p = spanalloc_calloc(count, size); break;
      case kAligned: p = spanalloc_aligned_alloc(align, size); break;
      case kPosix: {
        int saved = errno = 1234;
        int rc = spanalloc_posix_memalign(&p, align, size);
        if (align < sizeof(void *)) {
          CHECK(rc == EINVAL, nullptr, rc, align);
          return;
        }
        CHECK(rc == 0, nullptr, rc, size);
        CHECK(errno == saved, p, errno, saved);
        break;
      }
    }
    CHECK(p != nullptr, nullptr, size, align);
    uint8_t *q = static_cast<uint8_t *>(p);
    if (kind == kCalloc && !AllAre(q, size * count, 0)) Fail("calloc memory not zero", q, size, count);
    Adopt(b, q, size * count, align);
    if (align <= 16) CHECK(b.usable <= Bound(size * count), q, b.usable, size * count);
    Fill(b);
  }

  void Free(Block &b, bool sized) {
    if (b.p == nullptr) return;
    Check(b);
    int saved = errno = 4321;
    // free_sized is for blocks of malloc, calloc and realloc (C23); an
    // aligned block needs its alignment too (free_aligned_sized).
    if (sized && b.align == 1)
      spanalloc_free_sized(b.p, b.size);
    else
      spanalloc_free(b.p);
    CHECK(errno == saved, b.p, errno, saved);
    Forget(b);
  }

  void Realloc(Block &b, size_t size) {
    if (bytes_ + size > kMaxLive) return;
    Check(b);
    Block old = b;
    errno = 0;
    void *p = spanalloc_realloc(b.p, size);
    if (b.p != nullptr && size == 0) {  // frees, as glibc's does
      CHECK(p == nullptr, p, size, 0);
      Forget(b);
      return;
    }
    CHECK(p != nullptr, b.p, size, errno);
    uint8_t *q = static_cast<uint8_t *>(p);
    size_t keep = old.size < size ? old.size : size;
    if (!AllAre(q, keep, old.fill)) Fail("realloc lost contents", q, keep, old.fill);
    if (old.p != nullptr) Forget(b);
    Adopt(b, q, size, 1);
    // Kept in place when the new size fits and wastes at most half.
    size_t limit = Bound(size) > 2 * size + 1 ? Bound(size) : 2 * size + 1;
    CHECK(b.usable <= limit, q, b.usable, size);
    Fill(b);
  }

  void ReallocZero(Block &b) {
    if (b.p == nullptr) return;
    Check(b);
    CHECK(spanalloc_realloc(b.p, 0) == nullptr, b.p, 0, 0);
    Forget(b);
  }

  void Touch(Block &b) {
    CHECK(spanalloc_usable_size(nullptr) == 0, nullptr, 0, 0);
    spanalloc_free(nullptr);
    if (b.p == nullptr) return;
    Check(b);
    CHECK(spanalloc_usable_size(b.p) == b.usable, b.p, spanalloc_usable_size(b.p), b.usable);
    Fill(b);
  }

  // Requests that must fail, and leave every live block as it was.
  void MustFail(Input &in) {
    uint8_t which = in.u8() % 6;
    size_t huge = (size_t{1} << 47) + in.u32();
    errno = 0;
    void *p = nullptr;
    int want = ENOMEM;
    switch (which) {
      case 0: p = spanalloc_malloc(huge); break;
      case 1: p = spanalloc_calloc(size_t{1} << 33, (size_t{1} << 31) + in.u8()); break;
      case 2: p = spanalloc_aligned_alloc(3 + 2 * (in.u8() % 100), 64), want = EINVAL; break;
      case 3: p = spanalloc_aligned_alloc(size_t{1} << (12 + in.u8() % 8), huge); break;
      case 4: {
        CHECK(spanalloc_posix_memalign(&p, 24, 64) == EINVAL, p, 0, 0);
        CHECK(p == nullptr, p, 0, 0);
        return;
      }
      case 5: {
        Block &b = slots_[in.u8() % kSlots];
        if (b.p == nullptr) return;
        p = spanalloc_realloc(b.p, huge);
        CHECK(p == nullptr, p, huge, 0);
        CHECK(errno == ENOMEM, b.p, errno, 0);
        Check(b);  // untouched
        return;
      }
    }
    CHECK(p == nullptr, p, which, 0);
    CHECK(errno == want, p, errno, want);
  }

  // Releases free memory and compares the statistics with the model.
  void ReleaseAndCount() {
    spanalloc_release_free_memory();
    spanalloc_stats s;
    CHECK(spanalloc_get_stats(&s) == 0, nullptr, 0, 0);
    uint64_t large = 0, small = 0;
    for (const Block &b : slots_) {
      if (b.p == nullptr) continue;
      (spanalloc::EntryClass(spanalloc::ClassEntry(b.p)) != 0 ? small : large) += b.usable;
    }
    CHECK(s.in_use_large == large, nullptr, s.in_use_large, large);
    CHECK(s.in_use_small >= small, nullptr, s.in_use_small, small);
    CHECK(s.thread_cache_free == 0, nullptr, s.thread_cache_free, 0);
    CHECK(s.committed <= s.mapped, nullptr, s.committed, s.mapped);
  }

  const bool trace_ = getenv("API_FUZZ_TRACE") != nullptr;  // prints every operation
  Block slots_[kSlots];
  std::map<uintptr_t, uintptr_t> live_;  // start -> end of each live block's usable range
  size_t bytes_ = 0;
  uint32_t counter_ = 0;
};

void ValidateHeap() {
  if (const char *e = spanalloc::g_page_heap.Validate()) Fail(e, nullptr, 0, 0);
  for (uint32_t cl = 1; cl < spanalloc::kNumClasses; cl++)
    if (const char *e = spanalloc::g_central[cl].Validate()) Fail(e, nullptr, cl, 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Input in(data, size);
  {
    Model m;
    m.Run(in);
  }  // every block freed
  spanalloc_stats s;
  spanalloc_get_stats(&s);
  CHECK(s.in_use_large == 0, nullptr, s.in_use_large, 0);
  ValidateHeap();
  return 0;
}
