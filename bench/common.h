// Shared helpers for the spanalloc benchmark workloads.
//
// Every workload is a standalone program that uses only the standard
// malloc/free/realloc/new/delete, so that LD_PRELOAD decides which allocator
// runs it. Each prints exactly one machine-readable result line on stdout:
//
//   {"bench":"spanalloc","workload":"churn","threads":1,"scale":1,
//    "seconds":0.5123,"ops":20000000,"unit":"malloc+free pairs",
//    "ops_per_sec":3.9e7,"checksum":123,"peak_rss_kb":4000,"extra":{...}}
//
// Common flags: --quick (scale 0.1 unless --scale is given), --scale F
// (multiplies the amount of work), --threads N, --seed S.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

namespace bench {

struct Args {
  bool quick = false;
  int threads = 1;
  double scale = 1.0;
  uint64_t seed = 42;
};

inline Args parse_args(int argc, char** argv, const char* usage_extra = "") {
  Args a;
  bool scale_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s: missing value after %s\n", argv[0], s.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (s == "--quick") {
      a.quick = true;
    } else if (s == "--threads") {
      a.threads = std::atoi(next());
    } else if (s == "--scale") {
      a.scale = std::atof(next());
      scale_given = true;
    } else if (s == "--seed") {
      a.seed = std::strtoull(next(), nullptr, 10);
    } else if (s == "--help" || s == "-h") {
      std::printf("usage: %s [--quick] [--scale F] [--threads N] [--seed S]%s\n", argv[0], usage_extra);
      std::exit(0);
    } else {
      std::fprintf(stderr, "%s: unknown argument %s\n", argv[0], s.c_str());
      std::exit(2);
    }
  }
  if (a.quick && !scale_given) a.scale = 0.1;
  if (a.threads < 1) a.threads = 1;
  if (a.scale <= 0) a.scale = 1.0;
  return a;
}

// Keeps the compiler from eliding an allocation or the writes into it.
inline void escape(const void* p) { asm volatile("" : : "g"(p) : "memory"); }
inline void clobber() { asm volatile("" : : : "memory"); }

inline uint64_t scaled(double base, double scale, uint64_t min = 1) {
  double v = base * scale;
  return v < double(min) ? min : uint64_t(v);
}

// splitmix64: small, fast, good enough, deterministic for a fixed seed.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x1234567ull) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n).
  uint64_t below(uint64_t n) { return (uint64_t)(((unsigned __int128)next() * n) >> 64); }
  // Uniform in [lo, hi].
  uint64_t range(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }
  double unit() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
  // Log-uniform in [lo, hi]: every octave equally likely.
  size_t log_uniform(size_t lo, size_t hi) {
    double l = __builtin_log((double)lo), h = __builtin_log((double)hi + 1.0);
    size_t v = (size_t)__builtin_exp(l + unit() * (h - l));
    return v < lo ? lo : (v > hi ? hi : v);
  }
};

// Writes one byte in every 4 KiB page of [p, p+n) and the last byte, so the
// pages become resident, as a program that uses its memory would.
inline uint64_t touch_pages(void* p, size_t n, uint8_t v) {
  volatile uint8_t* b = static_cast<uint8_t*>(p);
  for (size_t i = 0; i < n; i += 4096) b[i] = v;
  b[n - 1] = v;
  return b[0];
}

struct Timer {
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
};

// Current resident set size, from /proc/self/statm (no allocation).
inline long rss_kb() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long size = 0, res = 0;
  if (std::fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
  std::fclose(f);
  return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

// Peak resident set size of this program: VmHWM from /proc/self/status, the
// high-water mark of this process image only. (getrusage's ru_maxrss, and
// wait4's, also count the parent's pages that the child held between fork and
// exec: with a Python driver that is a floor of ~17 MiB.)
inline long peak_rss_kb() {
  long kb = -1;
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f))
      if (std::strncmp(line, "VmHWM:", 6) == 0) {
        kb = std::atol(line + 6);
        break;
      }
    std::fclose(f);
  }
  if (kb < 0) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    kb = ru.ru_maxrss;
  }
  return kb;
}

struct Result {
  const char* workload = "";
  const char* unit = "ops";
  int threads = 1;
  double scale = 1;
  double seconds = 0;
  uint64_t ops = 0;
  uint64_t checksum = 0;
  std::vector<std::pair<std::string, double>> extra;
};

// Prints the one result line. Built in a fixed buffer so that reporting does
// not add allocations of its own.
inline void report(const Result& r) {
  char buf[2048];
  int n = std::snprintf(buf, sizeof buf,
                        "{\"bench\":\"spanalloc\",\"workload\":\"%s\",\"threads\":%d,\"scale\":%g,"
                        "\"seconds\":%.6f,\"ops\":%llu,\"unit\":\"%s\",\"ops_per_sec\":%.6g,"
                        "\"checksum\":%llu,\"peak_rss_kb\":%ld,\"extra\":{",
                        r.workload, r.threads, r.scale, r.seconds, (unsigned long long)r.ops, r.unit,
                        r.seconds > 0 ? double(r.ops) / r.seconds : 0.0,
                        (unsigned long long)r.checksum, peak_rss_kb());
  for (size_t i = 0; i < r.extra.size() && n < (int)sizeof buf - 128; ++i)
    n += std::snprintf(buf + n, sizeof buf - n, "%s\"%s\":%.6g", i ? "," : "", r.extra[i].first.c_str(),
                       r.extra[i].second);
  std::snprintf(buf + n, sizeof buf - n, "}}\n");
  std::fputs(buf, stdout);
  std::fflush(stdout);
}

// Runs work(id) for id = 0 .. n-1: id 0 on the calling thread, the others on
// new threads. All start together (a spinning barrier, so thread creation is
// not part of what work measures) and all are joined before it returns.
template <typename Work>
void run_threads(int n, Work&& work) {
  std::atomic<int> ready{0};
  auto body = [&](int id) {
    ready.fetch_add(1);
    while (ready.load() < n) sched_yield();
    work(id);
  };
  std::vector<std::thread> th;
  for (int i = 1; i < n; ++i) th.emplace_back(body, i);
  body(0);
  for (auto& x : th) x.join();
}

}  // namespace bench
