// Workload 6: realloc growth.
// Phase A: 8 strings grown round-robin, one byte per realloc, each to a random
//          length (log-uniform 16 B-256 KiB), then freed and started again.
// Phase B: a buffer grown by doubling from 16 B up to 64 MiB with realloc,
//          the new half written each step; repeated.
#include "common.h"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv);
  bench::Rng rng(a.seed);
  const uint64_t bytes_a = bench::scaled(24e6, a.scale);
  const uint64_t rounds_b = bench::scaled(6, a.scale < 1 ? 1 : a.scale);
  const size_t max_b = a.scale < 0.5 ? (size_t(16) << 20) : (size_t(64) << 20);
  constexpr int kStrings = 8;
  char* str[kStrings] = {};
  size_t len[kStrings] = {}, target[kStrings] = {};
  uint64_t sum = 0, reallocs = 0;
  bench::Timer t;
  for (int s = 0; s < kStrings; ++s) target[s] = rng.log_uniform(16, 256 << 10);
  for (uint64_t i = 0; i < bytes_a; ++i) {
    int s = (int)(i % kStrings);
    char* p = static_cast<char*>(std::realloc(str[s], len[s] + 1));
    p[len[s]++] = (char)i;
    str[s] = p;
    ++reallocs;
    if (len[s] == target[s]) {
      sum += (uint8_t)p[len[s] / 2];
      std::free(p);
      str[s] = nullptr;
      len[s] = 0;
      target[s] = rng.log_uniform(16, 256 << 10);
    }
  }
  for (int s = 0; s < kStrings; ++s) std::free(str[s]);
  double phase_a = t.seconds();
  for (uint64_t r = 0; r < rounds_b; ++r) {
    size_t n = 16;
    char* p = static_cast<char*>(std::malloc(n));
    std::memset(p, 1, n);
    while (n < max_b) {
      p = static_cast<char*>(std::realloc(p, 2 * n));
      ++reallocs;
      std::memset(p + n, (int)r, n);
      n *= 2;
    }
    sum += (uint8_t)p[n - 1] + (uint8_t)p[0];
    std::free(p);
  }
  bench::Result res;
  res.workload = "realloc";
  res.unit = "realloc calls";
  res.scale = a.scale;
  res.seconds = t.seconds();
  res.ops = reallocs;
  res.checksum = sum;
  res.extra = {{"bytewise_seconds", phase_a}, {"doubling_seconds", res.seconds - phase_a}};
  bench::report(res);
}
