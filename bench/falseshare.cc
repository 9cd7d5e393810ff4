// Workload 5: false sharing, measured as time (the "cache-thrash" and
// "cache-scratch" shapes, written from their description).
// Active phase: each thread repeatedly allocates an 8 B object, writes it
// 1000 times and frees it. If the allocator hands neighbouring 8 B blocks of
// one cache line to different threads, the writes fight over the line.
// Passive phase: the main thread allocates one 8 B object per thread back to
// back and hands them out; each thread frees its object, then runs the same
// loop, so an allocator that reuses the freed block locally shares a line with
// the other threads. Total work is fixed and divided among the threads.
#include "common.h"

#include <sched.h>

#include <thread>

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv);
  const int n = a.threads;
  constexpr int kWrites = 1000;
  const uint64_t total_objs = bench::scaled(300e3, a.scale);
  const uint64_t per_thread = (total_objs + n - 1) / n;
  std::vector<uint64_t> sums(n, 0);
  auto loop = [&](int id) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < per_thread; ++i) {
      volatile char* p = static_cast<char*>(std::malloc(8));
      for (int w = 0; w < kWrites; ++w) p[w & 7] = (char)(p[w & 7] + 1);
      sum += (uint8_t)p[0];
      std::free((void*)p);
    }
    sums[id] += sum;
  };
  auto run_phase = [&](bool passive) {
    std::vector<void*> given(n);
    if (passive)
      for (int i = 0; i < n; ++i) given[i] = std::malloc(8);
    bench::run_threads(n, [&](int id) {
      if (passive) std::free(given[id]);
      loop(id);
    });
  };
  bench::Timer t;
  run_phase(false);
  double active = t.seconds();
  run_phase(true);
  double total = t.seconds();
  bench::Result res;
  res.workload = "falseshare";
  res.unit = "objects written 1000 times";
  res.threads = n;
  res.scale = a.scale;
  res.seconds = total;
  res.ops = 2 * per_thread * n;
  for (auto s : sums) res.checksum += s;
  res.extra = {{"active_seconds", active}, {"passive_seconds", total - active}};
  bench::report(res);
}
