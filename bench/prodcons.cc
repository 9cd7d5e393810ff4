// Workload 3: producer/consumer. N threads form a ring: thread i allocates
// batches of 256 objects (16-512 B) and passes them to thread (i+1) % N,
// which reads and frees them. With N >= 2 every free is of an object that
// another thread allocated (the batch array itself included); with N = 1 the
// thread frees its own objects. The total work is fixed and divided among the
// threads (strong scaling).
#include "common.h"

#include <sched.h>

#include <thread>

namespace {

constexpr size_t kBatch = 256, kCap = 64;

struct Batch {
  void* obj[kBatch];
};

// Single-producer single-consumer ring of batch pointers.
struct alignas(64) Queue {
  alignas(64) std::atomic<uint64_t> head{0};  // consumer
  alignas(64) std::atomic<uint64_t> tail{0};  // producer
  alignas(64) Batch* slot[kCap];
  bool push(Batch* b) {
    uint64_t t = tail.load(std::memory_order_relaxed);
    if (t - head.load(std::memory_order_acquire) >= kCap) return false;
    slot[t % kCap] = b;
    tail.store(t + 1, std::memory_order_release);
    return true;
  }
  Batch* pop() {
    uint64_t h = head.load(std::memory_order_relaxed);
    if (h == tail.load(std::memory_order_acquire)) return nullptr;
    Batch* b = slot[h % kCap];
    head.store(h + 1, std::memory_order_release);
    return b;
  }
};

}  // namespace

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv);
  const int n = a.threads;
  const uint64_t total_batches = bench::scaled(40e3, a.scale);
  const uint64_t per_thread = (total_batches + n - 1) / n;
  std::vector<Queue> queues(n);
  std::vector<uint64_t> sums(n, 0);
  bench::Timer t;
  auto work = [&](int id) {
    bench::Rng rng(a.seed + id);
    uint16_t sizes[1024];
    for (auto& s : sizes) s = (uint16_t)rng.range(16, 512);
    Queue& out = queues[id];
    Queue& in = queues[(id + n - 1) % n];
    uint64_t produced = 0, consumed = 0, sum = 0;
    size_t k = 0;
    Batch* pending = nullptr;
    while (produced < per_thread || consumed < per_thread) {
      bool progress = false;
      if (produced < per_thread) {
        if (!pending) {
          pending = static_cast<Batch*>(std::malloc(sizeof(Batch)));
          for (size_t j = 0; j < kBatch; ++j) {
            size_t s = sizes[k++ & 1023];
            char* p = static_cast<char*>(std::malloc(s));
            p[0] = (char)j;
            p[s - 1] = 1;
            pending->obj[j] = p;
          }
        }
        if (out.push(pending)) {
          pending = nullptr;
          ++produced;
          progress = true;
        }
      }
      while (Batch* b = in.pop()) {
        for (size_t j = 0; j < kBatch; ++j) {
          sum += *static_cast<uint8_t*>(b->obj[j]);
          std::free(b->obj[j]);
        }
        std::free(b);
        ++consumed;
        progress = true;
      }
      if (!progress) sched_yield();
    }
    sums[id] = sum;
  };
  bench::run_threads(n, work);
  bench::Result res;
  res.workload = "prodcons";
  res.unit = "objects passed and freed";
  res.threads = n;
  res.scale = a.scale;
  res.seconds = t.seconds();
  res.ops = per_thread * n * kBatch;
  for (auto s : sums) res.checksum += s;
  bench::report(res);
}
