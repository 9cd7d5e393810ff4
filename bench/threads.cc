// Workload 9: thread churn. Thousands of short-lived threads, N at a time;
// each allocates 200 objects (16 B-4 KiB) and one 64 KiB buffer, frees three
// quarters of them, hands the rest to the main thread and exits. The main
// thread frees what the previous wave handed over (objects of dead threads).
#include "common.h"

#include <thread>

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv);
  const int n = a.threads;
  const uint64_t total_threads = bench::scaled(4000, a.scale, (uint64_t)n);
  const uint64_t waves = (total_threads + n - 1) / n;
  constexpr int kObjs = 200;
  std::vector<std::vector<void*>> handed(n);
  std::vector<uint64_t> sums(n, 0);
  uint64_t sum = 0;
  bench::Timer t;
  for (uint64_t w = 0; w < waves; ++w) {
    std::vector<std::thread> th;
    th.reserve(n);
    for (int i = 0; i < n; ++i) {
      th.emplace_back([&, i, w] {
        bench::Rng rng(a.seed + w * 1000 + i);
        void* obj[kObjs + 1];
        for (int j = 0; j < kObjs; ++j) {
          size_t s = rng.log_uniform(16, 4096);
          char* p = static_cast<char*>(std::malloc(s));
          p[0] = (char)j;
          obj[j] = p;
        }
        obj[kObjs] = std::malloc(64 << 10);
        bench::touch_pages(obj[kObjs], 64 << 10, 1);
        uint64_t s = 0;
        for (int j = 0; j <= kObjs; ++j) {
          if (j % 4 == 0) {
            handed[i].push_back(obj[j]);
          } else {
            s += *static_cast<uint8_t*>(obj[j]);
            std::free(obj[j]);
          }
        }
        sums[i] += s;
      });
    }
    for (auto& x : th) x.join();
    for (auto& v : handed) {
      for (void* p : v) {
        sum += *static_cast<uint8_t*>(p);
        std::free(p);
      }
      v.clear();
    }
  }
  for (auto s : sums) sum += s;
  bench::Result res;
  res.workload = "threads";
  res.unit = "threads created";
  res.threads = n;
  res.scale = a.scale;
  res.seconds = t.seconds();
  res.ops = waves * n;
  res.checksum = sum;
  bench::report(res);
}
