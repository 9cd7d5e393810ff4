#include "lock.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "common.h"

namespace spanalloc {

bool LockRankAllows(const uint8_t (&held)[kNumLockRanks], LockRank rank, bool forking) {
  for (int r = int(rank) + (forking ? 1 : 0); r < kNumLockRanks; r++)
    if (held[r] != 0) return false;
  return true;
}

const char *LockRankName(LockRank rank) {
  switch (rank) {
    case LockRank::kInit: return "init";
    case LockRank::kRegistry: return "thread-cache registry";
    case LockRank::kCentral: return "central list";
    case LockRank::kPageHeap: return "page heap";
    case LockRank::kSampler: return "sampler";
    case LockRank::kMetadata: return "metadata (FixedAlloc)";
  }
  return "?";
}

#ifndef NDEBUG
namespace {
// This thread's held locks by rank, and whether it is in fork's handlers.
__thread uint8_t tls_held[kNumLockRanks] __attribute__((tls_model("initial-exec")));
__thread bool tls_forking __attribute__((tls_model("initial-exec")));
}  // namespace

void LockRankAcquire(LockRank rank) {
  if (!LockRankAllows(tls_held, rank, tls_forking)) {
    char msg[160] = "lock order: taking the ";
    size_t n = __builtin_strlen(msg);
    auto append = [&](const char *s) {
      while (*s && n + 1 < sizeof msg) msg[n++] = *s++;
      msg[n] = '\0';
    };
    append(LockRankName(rank));
    append(" lock while holding a lock of the same or a higher rank (lock.h)");
    FatalInternal(msg);
  }
  tls_held[int(rank)]++;
}
void LockRankRelease(LockRank rank) {
  if (tls_held[int(rank)] == 0) FatalInternal("lock order: releasing a lock this thread does not hold");
  tls_held[int(rank)]--;
}
void LockRankForkBegin() { tls_forking = true; }
void LockRankForkEnd() { tls_forking = false; }
#endif

namespace {
void FutexWait(std::atomic<uint32_t> *addr, uint32_t value) {
  syscall(SYS_futex, reinterpret_cast<uint32_t *>(addr), FUTEX_WAIT_PRIVATE, value, nullptr, nullptr, 0);
}
void FutexWake(std::atomic<uint32_t> *addr) {
  syscall(SYS_futex, reinterpret_cast<uint32_t *>(addr), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}
}  // namespace

void Mutex::LockSlow() {
  int saved = errno;
  // Spin a little: critical sections are short.
  for (int i = 0; i < 100; i++) {
    uint32_t expected = 0;
    if (state_.load(std::memory_order_relaxed) == 0 &&
        state_.compare_exchange_weak(expected, 1, std::memory_order_acquire)) {
      errno = saved;
      return;
    }
    __builtin_ia32_pause();
  }
  // Mark contended and sleep until the holder wakes us.
  while (state_.exchange(2, std::memory_order_acquire) != 0) FutexWait(&state_, 2);
  errno = saved;
}

void Mutex::Wake() {
  int saved = errno;
  FutexWake(&state_);
  errno = saved;
}

}  // namespace spanalloc
