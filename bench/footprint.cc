// Footprint: what an idle program gives back. Allocates 1 GiB (requested
// bytes) of mixed objects -- 70 % small (16 B-32 KiB, log-uniform), 30 %
// blocks of 64 KiB-4 MiB -- every page written, frees all of it in random
// order, then sits idle for 5 s, then calls malloc_trim(0). Reports RSS at
// the start, with everything live, right after the frees, after 1 and 5 s
// idle, and after the trim (extra fields, KiB). The time is the
// allocate+free phase only. Threads: 1 (the idle phase is what is measured).
#include "common.h"

#include <malloc.h>
#include <sys/mman.h>

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv);
  bench::Rng rng(a.seed);
  const uint64_t bytes = bench::scaled(double(1ull << 30), a.scale);
  const double idle_s = a.quick ? 1.0 : 5.0;
  // The pointer table lives outside the allocator under test.
  const size_t max = bytes / 16 + 1;
  void** t = static_cast<void**>(
      mmap(nullptr, max * sizeof(void*), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (t == MAP_FAILED) return 1;
  long rss_start = bench::rss_kb();
  bench::Timer timer;
  uint64_t small = 0, large = 0, sum = 0;
  size_t n = 0;
  while (small + large < bytes && n < max) {
    size_t s;
    if (large >= bytes * 3 / 10 || (small < bytes * 7 / 10 && rng.below(100) < 70)) {
      s = rng.log_uniform(16, 32768);
      small += s;
    } else {
      s = rng.log_uniform(64 << 10, 4 << 20);
      large += s;
    }
    void* p = std::malloc(s);
    if (p == nullptr) return 1;
    std::memset(p, int(n), s);
    t[n++] = p;
  }
  long rss_full = bench::rss_kb();
  for (size_t i = n; i > 1; --i) std::swap(t[i - 1], t[rng.below(i)]);
  for (size_t i = 0; i < n; ++i) {
    sum += *static_cast<uint8_t*>(t[i]);
    std::free(t[i]);
  }
  double seconds = timer.seconds();
  long rss_after_free = bench::rss_kb();
  bench::Timer idle;
  long rss_idle1 = -1;
  while (idle.seconds() < idle_s) {
    usleep(50 * 1000);
    if (rss_idle1 < 0 && idle.seconds() >= 1.0) rss_idle1 = bench::rss_kb();
  }
  long rss_idle = bench::rss_kb();
  malloc_trim(0);
  long rss_trim = bench::rss_kb();
  bench::Result res;
  res.workload = "footprint";
  res.unit = "objects allocated and freed";
  res.scale = a.scale;
  res.seconds = seconds;
  res.ops = n;
  res.checksum = sum;
  res.extra = {{"rss_start_kb", double(rss_start)},        {"rss_full_kb", double(rss_full)},
               {"rss_after_free_kb", double(rss_after_free)}, {"rss_idle1_kb", double(rss_idle1)},
               {"rss_idle_kb", double(rss_idle)},          {"rss_trim_kb", double(rss_trim)},
               {"idle_seconds", idle_s}};
  bench::report(res);
}
