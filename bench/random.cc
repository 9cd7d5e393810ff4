// Workload 2: random sizes from 1 B to 1 MiB (log-uniform: every octave is
// equally likely) replacing random slots of a live set of 1000 objects, fixed
// seed. Each new object has one byte written per 4 KiB page.
#include "common.h"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv);
  bench::Rng rng(a.seed);
  constexpr size_t kSlots = 1000;
  const uint64_t ops = bench::scaled(600e3, a.scale);
  std::vector<void*> slot(kSlots, nullptr);
  std::vector<uint32_t> slot_size(kSlots, 0);
  uint64_t sum = 0;
  bench::Timer t;
  for (uint64_t i = 0; i < ops; ++i) {
    size_t j = rng.below(kSlots);
    if (slot[j]) {
      sum += *static_cast<uint8_t*>(slot[j]);
      std::free(slot[j]);
    }
    size_t s = rng.log_uniform(1, 1 << 20);
    void* p = std::malloc(s);
    bench::touch_pages(p, s, (uint8_t)i);
    slot[j] = p;
    slot_size[j] = (uint32_t)s;
  }
  for (size_t j = 0; j < kSlots; ++j) std::free(slot[j]);
  bench::Result res;
  res.workload = "random";
  res.unit = "malloc+free pairs";
  res.scale = a.scale;
  res.seconds = t.seconds();
  res.ops = ops;
  res.checksum = sum;
  bench::report(res);
}
