// Many threads, each with its own live set (the "many threads" table, not in
// the 1- and 2-thread means): every thread keeps 2,000 live objects of
// 16-1024 B and replaces one at random 200,000 times (x --scale). The work is
// per thread (weak scaling): 64 threads hold about 66 MB live. With more
// threads than cores, what an allocator keeps per thread (thread caches)
// rather than per CPU shows in peak RSS. Every byte of every object is
// written, so the live set is resident.
#include "common.h"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv);
  const int n = a.threads;
  constexpr size_t kLive = 2000;
  const uint64_t per_thread = bench::scaled(200000, a.scale);
  std::vector<uint64_t> sums(n, 0);
  std::atomic<int> finished{0};
  bench::Timer t;
  auto work = [&](int id) {
    bench::Rng rng(a.seed * 7919 + id + 1);
    std::vector<char*> live(kLive);
    for (auto& p : live) {
      size_t sz = rng.range(16, 1024);
      p = static_cast<char*>(std::malloc(sz));
      std::memset(p, id, sz);
    }
    uint64_t sum = 0;
    for (uint64_t i = 0; i < per_thread; ++i) {
      size_t k = rng.below(kLive);
      sum += static_cast<uint8_t>(live[k][0]);
      std::free(live[k]);
      size_t sz = rng.range(16, 1024);
      live[k] = static_cast<char*>(std::malloc(sz));
      std::memset(live[k], int(i), sz);
    }
    // Every live set stays until all threads are done, so the peak holds
    // all of them whatever the scheduling.
    finished.fetch_add(1);
    while (finished.load() < n) sched_yield();
    for (auto p : live) std::free(p);
    sums[id] = sum;
  };
  bench::run_threads(n, work);
  double secs = t.seconds();
  bench::Result res;
  res.workload = "livesets";
  res.unit = "replacements";
  res.threads = n;
  res.scale = a.scale;
  res.seconds = secs;
  res.ops = per_thread * n;
  for (auto s : sums) res.checksum += s;
  bench::report(res);
}
