// Workload 1: single-thread churn of small objects (8-256 B).
// Phase A: malloc then free at once (immediate reuse).
// Phase B: batches of 1000 allocated, then freed in LIFO order.
// Phase C: batches of 1000 allocated with operator new, freed in FIFO order
//          with sized operator delete.
#include "common.h"

#include <new>

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv);
  bench::Rng rng(a.seed);
  constexpr size_t kSizes = 4096, kBatch = 1000;
  static uint16_t sizes[kSizes];
  for (auto& s : sizes) s = (uint16_t)rng.range(8, 256);
  const uint64_t n_a = bench::scaled(12e6, a.scale), n_b = bench::scaled(6e3, a.scale),
                 n_c = bench::scaled(6e3, a.scale);
  static void* batch[kBatch];
  uint64_t sum = 0;
  bench::Timer t;
  for (uint64_t i = 0; i < n_a; ++i) {
    size_t s = sizes[i & (kSizes - 1)];
    char* p = static_cast<char*>(std::malloc(s));
    p[0] = (char)i;
    p[s - 1] = (char)s;
    bench::escape(p);
    sum += (uint8_t)p[0];
    std::free(p);
  }
  size_t k = 0;
  for (uint64_t r = 0; r < n_b; ++r) {
    for (size_t j = 0; j < kBatch; ++j) {
      size_t s = sizes[k++ & (kSizes - 1)];
      char* p = static_cast<char*>(std::malloc(s));
      p[0] = (char)j;
      batch[j] = p;
    }
    for (size_t j = kBatch; j-- > 0;) {
      sum += *static_cast<uint8_t*>(batch[j]);
      std::free(batch[j]);
    }
  }
  static uint16_t bsize[kBatch];
  for (uint64_t r = 0; r < n_c; ++r) {
    for (size_t j = 0; j < kBatch; ++j) {
      size_t s = sizes[k++ & (kSizes - 1)];
      char* p = static_cast<char*>(::operator new(s));
      p[0] = (char)j;
      batch[j] = p;
      bsize[j] = (uint16_t)s;
    }
    for (size_t j = 0; j < kBatch; ++j) {
      sum += *static_cast<uint8_t*>(batch[j]);
      ::operator delete(batch[j], bsize[j]);
    }
  }
  bench::Result res;
  res.workload = "churn";
  res.unit = "malloc+free pairs";
  res.threads = 1;
  res.scale = a.scale;
  res.seconds = t.seconds();
  res.ops = n_a + (n_b + n_c) * kBatch;
  res.checksum = sum;
  bench::report(res);
}
