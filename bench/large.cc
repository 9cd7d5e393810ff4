// Workload 7: large objects (64 KiB-32 MiB, log-uniform) allocated and freed
// across threads. N threads replace random slots of a shared array of 32
// objects; each new object has one byte written per 4 KiB page, so pages the
// allocator hands back to the OS and maps again cost page faults. With N >= 2
// most frees are of another thread's objects. Total work fixed, divided among
// the threads.
#include "common.h"

#include <sched.h>

#include <thread>

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv);
  const int n = a.threads;
  constexpr size_t kSlots = 32;
  const uint64_t total_ops = bench::scaled(1000, a.scale);
  const uint64_t per_thread = (total_ops + n - 1) / n;
  std::vector<std::atomic<void*>> slot(kSlots);
  for (auto& s : slot) s.store(nullptr);
  std::vector<uint64_t> sums(n, 0);
  bench::Timer t;
  auto work = [&](int id) {
    bench::Rng rng(a.seed * 31 + id + 1);
    uint64_t sum = 0;
    for (uint64_t i = 0; i < per_thread; ++i) {
      size_t sz = rng.log_uniform(64 << 10, 32 << 20);
      void* p = std::malloc(sz);
      bench::touch_pages(p, sz, (uint8_t)(i + 1));
      void* old = slot[rng.below(kSlots)].exchange(p, std::memory_order_acq_rel);
      if (old) {
        sum += *static_cast<uint8_t*>(old);
        std::free(old);
      }
    }
    sums[id] = sum;
  };
  bench::run_threads(n, work);
  for (auto& s : slot) std::free(s.load());
  bench::Result res;
  res.workload = "large";
  res.unit = "large malloc+free pairs";
  res.threads = n;
  res.scale = a.scale;
  res.seconds = t.seconds();
  res.ops = per_thread * n;
  for (auto s : sums) res.checksum += s;
  bench::report(res);
}
