// See free_list.h for the link encoding and where links are checked.
#include "free_list.h"

#include <sys/random.h>
#include <time.h>

#include "page_map.h"
#include "size_classes.h"

namespace spanalloc {

constinit uint64_t g_link_secret = 0;
constinit const uint64_t g_list_end = 1;

namespace {
uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

void InitLinkSecret() noexcept {
  if (__atomic_load_n(&g_link_secret, __ATOMIC_ACQUIRE) != 0) return;
  uint64_t r = 0;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) != ssize_t(sizeof r)) {
    // No entropy yet (early boot) or no syscall: the clock and the address
    // space layout, which ASLR randomises.
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    r = Mix(uint64_t(ts.tv_nsec) ^ (uint64_t(ts.tv_sec) << 32) ^ reinterpret_cast<uintptr_t>(&ts) ^
            reinterpret_cast<uintptr_t>(&g_link_secret));
  }
  // Top 16 bits kSecretTop16 (free_list.h): bit 63 set, so a cleared word
  // (0) never decodes plausibly; bit 62 clear, nor does an all-ones word.
  // Low bits set: nor does an aligned pointer.
  static_assert((kSecretTop16 >> 14) == 2, "bit 63 set, bit 62 clear");
  r = (r & ((uint64_t{1} << 48) - 1)) | (uint64_t{kSecretTop16} << 48) | 7;
  uint64_t expected = 0;
  __atomic_compare_exchange_n(&g_link_secret, &expected, r, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

bool LinkIsValid(const void *link, uint32_t cl) noexcept {
  if (link == nullptr) return true;
  if (!LinkIsPlausible(link)) return false;
  uint64_t e = ClassEntry(link);
  if (EntryClass(e) != cl) return false;
  uint64_t off = reinterpret_cast<uintptr_t>(link) - EntrySpanStart(e);
  // An object start, and not in the span's tail past its last object (an
  // object there would overlap the next span): kClassLimit.
  return off * kClassMagic[cl] < kClassLimit[cl];
}

void *CheckedLinkOf(const void *slot, uint32_t cl, const char *func) noexcept {
  void *next = LinkOf(slot);
  if (SPANALLOC_UNLIKELY(!LinkIsValid(next, cl))) FatalCorruptLink(slot, cl, func);
  return next;
}

void *CheckedListLinkOf(const void *slot, uint32_t cl, const char *func) noexcept {
  void *next = LinkOf(slot);
  if (SPANALLOC_UNLIKELY(next != ListEnd() && (next == nullptr || !LinkIsValid(next, cl)))) FatalCorruptLink(slot, cl, func);
  return next;
}

void FatalCorruptLink(const void *slot, uint32_t cl, const char *func) noexcept {
  FatalMisuse(func, slot, "free-list corruption", "free, its link overwritten by a write after free or an overflow from the block before it",
              ClassSize(cl));
}

uint32_t CutAtFirstBadLink(void **head, uint32_t length, uint32_t cl, void *end) noexcept {
  uint32_t n = 0;
  if (*head != nullptr && *head != end && length > 0 && LinkIsValid(*head, cl)) {
    void *last = *head;
    for (n = 1; n < length; n++) {
      void *next = LinkOf(last);
      if (next == nullptr || !LinkIsValid(next, cl)) break;
      last = next;
    }
    SetLink(last, end);
  }
  if (n == 0) *head = end;
  return n;
}

}  // namespace spanalloc
