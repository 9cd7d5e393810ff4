// Workload 4: a server simulation in the style of the classic "larson" test
// (written from its description, no code taken): N threads replace random
// slots of one shared array of 20000 objects with new objects of random size
// (16-1024 B), freeing the object they displace. With N >= 2 most frees are of
// objects another thread allocated. Total work is fixed and divided among the
// threads (strong scaling).
#include "common.h"

#include <sched.h>

#include <thread>

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv);
  const int n = a.threads;
  constexpr size_t kSlots = 20000;
  const uint64_t total_ops = bench::scaled(8e6, a.scale);
  const uint64_t per_thread = (total_ops + n - 1) / n;
  std::vector<std::atomic<void*>> slot(kSlots);
  bench::Rng r0(a.seed);
  for (auto& s : slot) {
    size_t sz = r0.range(16, 1024);
    char* p = static_cast<char*>(std::malloc(sz));
    p[0] = 1;
    s.store(p, std::memory_order_relaxed);
  }
  std::vector<uint64_t> sums(n, 0);
  bench::Timer t;
  auto work = [&](int id) {
    bench::Rng rng(a.seed * 7919 + id + 1);
    uint64_t sum = 0;
    for (uint64_t i = 0; i < per_thread; ++i) {
      size_t sz = rng.range(16, 1024);
      char* p = static_cast<char*>(std::malloc(sz));
      std::memset(p, (int)i, sz < 64 ? sz : 64);
      void* old = slot[rng.below(kSlots)].exchange(p, std::memory_order_acq_rel);
      sum += *static_cast<uint8_t*>(old);
      std::free(old);
    }
    sums[id] = sum;
  };
  bench::run_threads(n, work);
  double secs = t.seconds();
  for (auto& s : slot) std::free(s.load());
  bench::Result res;
  res.workload = "server";
  res.unit = "slot replacements";
  res.threads = n;
  res.scale = a.scale;
  res.seconds = secs;
  res.ops = per_thread * n;
  for (auto s : sums) res.checksum += s;
  bench::report(res);
}
