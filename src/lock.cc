#include "lock.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace spanalloc {

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
