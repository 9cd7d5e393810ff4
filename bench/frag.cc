// Workload 8: fragmentation. Allocate 1 GiB (requested bytes) of small
// objects (16-256 B), free a random 90 % of them, then allocate 512 MiB of
// objects of other sizes (300-3000 B) while the surviving 10 % stay live.
// Reports the RSS after the frees and at the end (before the final frees),
// besides the peak that the driver measures.
#include "common.h"

#include <sys/mman.h>

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv);
  bench::Rng rng(a.seed);
  const uint64_t bytes1 = bench::scaled(double(1ull << 30), a.scale);
  const uint64_t bytes2 = bytes1 / 2;
  // The pointer tables live outside the allocator under test.
  const size_t max1 = bytes1 / 16 + 1, max2 = bytes2 / 300 + 1;
  void** t1 = static_cast<void**>(mmap(nullptr, max1 * sizeof(void*), PROT_READ | PROT_WRITE,
                                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  void** t2 = static_cast<void**>(mmap(nullptr, max2 * sizeof(void*), PROT_READ | PROT_WRITE,
                                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (t1 == MAP_FAILED || t2 == MAP_FAILED) return 1;
  uint64_t sum = 0, ops = 0;
  bench::Timer t;
  size_t n1 = 0;
  for (uint64_t got = 0; got < bytes1; ++n1) {
    size_t s = rng.range(16, 256);
    char* p = static_cast<char*>(std::malloc(s));
    p[0] = (char)n1;
    p[s - 1] = 1;
    t1[n1] = p;
    got += s;
  }
  size_t kept = 0;
  for (size_t i = 0; i < n1; ++i) {
    if (rng.below(10) != 0) {
      sum += *static_cast<uint8_t*>(t1[i]);
      std::free(t1[i]);
    } else {
      t1[kept++] = t1[i];
    }
  }
  long rss_after_free = bench::rss_kb();
  size_t n2 = 0;
  for (uint64_t got = 0; got < bytes2; ++n2) {
    size_t s = rng.range(300, 3000);
    char* p = static_cast<char*>(std::malloc(s));
    p[0] = (char)n2;
    p[s - 1] = 1;
    t2[n2] = p;
    got += s;
  }
  long rss_final = bench::rss_kb();
  for (size_t i = 0; i < n2; ++i) std::free(t2[i]);
  for (size_t i = 0; i < kept; ++i) std::free(t1[i]);
  ops = n1 + n2;
  bench::Result res;
  res.workload = "frag";
  res.unit = "objects allocated";
  res.scale = a.scale;
  res.seconds = t.seconds();
  res.ops = ops;
  res.checksum = sum;
  res.extra = {{"rss_after_free_kb", double(rss_after_free)},
               {"rss_final_kb", double(rss_final)},
               {"rss_end_kb", double(bench::rss_kb())}};
  bench::report(res);
}
