// Memory that comes back (issue: bounded-time release, memory limit, glibc's
// knobs): RSS as seen from outside (/proc/self/statm) after a program frees
// what it allocated and then sits idle; the background release thread's
// life cycle (never in small programs, lazily started, restarted in a fork
// child); SPANALLOC_BACKGROUND=0; mallopt(M_TRIM_THRESHOLD / M_TOP_PAD) and
// MALLOC_TRIM_THRESHOLD_; the memory limit, from the environment and from a
// cgroup v1 memory controller (as root).
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "api_common.h"

using namespace api;

extern char **environ;

namespace {

using Clock = std::chrono::steady_clock;

int threads() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("Threads:", 0) == 0) return atoi(line.c_str() + 8);
  return -1;
}

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// 1 GiB (or `bytes`) of mixed objects: 70 % small (16 B-32 KiB, log-uniform),
// 30 % blocks of 64 KiB-4 MiB; every byte written.
std::vector<void *> mixed(Rng &rng, size_t bytes) {
  std::vector<void *> v;
  size_t small = 0, large = 0;
  while (small + large < bytes) {
    size_t n;
    if (large >= bytes * 3 / 10 || (small < bytes * 7 / 10 && rng.below(100) < 70)) {
      n = size_t{16} << rng.below(11);
      n += rng.below(n);
      small += n;
    } else {
      n = (64 * kKiB) << rng.below(6);
      n += rng.below(n);
      if (n > 4 * kMiB) n = 4 * kMiB;
      large += n;
    }
    void *p = malloc(n);
    if (p == nullptr) break;
    memset(p, 0x5a, n);
    v.push_back(p);
  }
  return v;
}

void free_shuffled(Rng &rng, std::vector<void *> &v) {
  for (size_t i = v.size(); i > 1; i--) std::swap(v[i - 1], v[rng.below(i)]);
  for (void *p : v) free(p);
  v.clear();
  v.shrink_to_fit();
}

// Waits up to `seconds` for RSS to drop to `limit`; returns the last RSS seen.
size_t wait_rss_below(size_t limit, double seconds, Clock::time_point t0) {
  size_t rss = rss_bytes();
  while (rss > limit && since(t0) < seconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    rss = rss_bytes();
  }
  return rss;
}

// Runs tests/api/release_helper (this build's flavour) with extra
// environment entries; its stdout and stderr are returned in *out. When
// cgroup is non-empty, the child joins that cgroup v1 directory first.
int run_helper(const std::vector<std::string> &env_extra, const std::vector<std::string> &args, std::string *out,
               const std::string &cgroup = "") {
  char path[] = "/tmp/spanalloc-release-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  std::vector<std::string> env;
  for (char **e = environ; *e; e++) env.push_back(*e);
  for (const std::string &e : env_extra) env.push_back(e);
  std::vector<char *> envp, argv;
  for (std::string &e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string helper = RELEASE_HELPER;
  argv.push_back(helper.data());
  std::vector<std::string> a = args;
  for (std::string &s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    if (!cgroup.empty()) {
      int c = open((cgroup + "/cgroup.procs").c_str(), O_WRONLY);
      if (c < 0 || write(c, "0", 1) != 1) _exit(90);
      close(c);
    }
    dup2(fd, 1);
    dup2(fd, 2);
    execve(argv[0], argv.data(), envp.data());
    _exit(91);
  }
  int status = -1;
  waitpid(pid, &status, 0);
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  close(fd);
  unlink(path);
  return status;
}

}  // namespace

// The check: 1 GiB of mixed objects freed; the program then sits
// idle. RSS comes back within 64 MiB of where it started within 5 s, with
// no malloc_trim, and within 8 MiB after malloc_trim(0).
TEST(Release, IdleProgramReturnsFreedMemory) {
  size_t start = rss_bytes();
  Rng rng(8);
  std::vector<void *> v = mixed(rng, size_t{1} << 30);
  size_t full = rss_bytes();
  ASSERT_GT(full, start + 900 * kMiB) << "the workload did not hold 1 GiB";
  free_shuffled(rng, v);
  auto t0 = Clock::now();
  size_t after_free = rss_bytes();
  size_t idle = wait_rss_below(start + 64 * kMiB, 5.0, t0);
  double took = since(t0);
  EXPECT_LE(idle, start + 64 * kMiB) << "RSS " << start / kMiB << " MiB at start, " << full / kMiB << " MiB full, "
                                     << after_free / kMiB << " MiB after the frees, " << idle / kMiB
                                     << " MiB after " << took << " s idle";
  EXPECT_EQ(threads(), 2) << "the background release thread should exist";
  malloc_trim(0);
  size_t trimmed = rss_bytes();
  // malloc_trim also gives back the pages of span records left free by the
  // 1 GiB heap (metadata_alloc.h).
  spanalloc_stats st = {};
  if (StatsFn get = stats_fn()) get(&st);
  EXPECT_LE(trimmed, start + 8 * kMiB) << "RSS " << start / kKiB << " KiB at start, " << trimmed / kKiB
                                       << " KiB after malloc_trim(0)";
  printf("RSS: start %.1f MiB, full %zu MiB, after frees %zu MiB, idle %zu MiB after %.2f s, trimmed %.1f MiB "
         "(metadata mapped %.1f MiB)\n",
         double(start) / kMiB, full / kMiB, after_free / kMiB, idle / kMiB, took, double(trimmed) / kMiB,
         double(st.metadata) / kMiB);
}

// A steady live set (64 MiB of 16 B-1 MiB blocks) churned for 10 s: RSS
// stays bounded (no growth after the first second beyond 32 MiB, and never
// above twice the live set plus 64 MiB).
TEST(Release, SteadyChurnStaysBounded) {
  Rng rng(10);
  const size_t kSlots = 4096;
  std::vector<void *> slot(kSlots, nullptr);
  std::vector<size_t> size(kSlots, 0);
  size_t live = 0;
  auto pick = [&] {
    size_t n = size_t{16} << rng.below(17);
    return n + rng.below(n);
  };
  for (size_t i = 0; i < kSlots && live < 64 * kMiB; i++) {
    size[i] = pick();
    slot[i] = malloc(size[i]);
    ASSERT_NE(slot[i], nullptr);
    memset(slot[i], 1, size[i]);
    live += size[i];
  }
  auto t0 = Clock::now();
  size_t at1 = 0, peak = 0, peak_live = live;
  while (since(t0) < 10.0) {
    for (int k = 0; k < 1000; k++) {
      size_t i = rng.below(kSlots);
      if (slot[i] != nullptr) {
        free(slot[i]);
        live -= size[i];
        slot[i] = nullptr;
      }
      if (live < 64 * kMiB) {
        size[i] = pick();
        slot[i] = malloc(size[i]);
        ASSERT_NE(slot[i], nullptr);
        memset(slot[i], 2, size[i] < 4096 ? size[i] : 4096);
        live += size[i];
        if (live > peak_live) peak_live = live;
      }
    }
    size_t rss = rss_bytes();
    if (at1 == 0 && since(t0) >= 1.0) at1 = rss;
    if (at1 != 0 && rss > peak) peak = rss;
  }
  for (void *p : slot) free(p);
  EXPECT_LE(peak, at1 + 32 * kMiB) << "RSS grew from " << at1 / kMiB << " MiB at 1 s to " << peak / kMiB << " MiB";
  EXPECT_LE(peak, 2 * peak_live + 64 * kMiB) << "live at most " << peak_live / kMiB << " MiB, RSS peak "
                                             << peak / kMiB << " MiB";
  printf("live <= %zu MiB; RSS %zu MiB at 1 s, peak %zu MiB over 10 s\n", peak_live / kMiB, at1 / kMiB, peak / kMiB);
}

// A program that never holds much free memory gets no extra thread; so it
// can still enter a user namespace (unshare(2) refuses multi-threaded
// callers with EINVAL).
TEST(Release, SmallProgramGetsNoThreadAndCanUnshare) {
  Rng rng(3);
  for (int round = 0; round < 20; round++) {
    std::vector<void *> v = mixed(rng, 8 * kMiB);
    free_shuffled(rng, v);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(threads(), 1);
  int rc = unshare(CLONE_NEWUSER);
  if (rc != 0 && errno != EINVAL) {
    printf("unshare(CLONE_NEWUSER) not permitted here (%s): the thread count above is the check\n", strerror(errno));
    return;
  }
  EXPECT_EQ(rc, 0) << "unshare(CLONE_NEWUSER): " << strerror(errno) << " (EINVAL: the process has threads)";
}

// The thread does not survive fork(); a child that frees enough memory
// starts its own and returns memory in bounded time too. The parent's
// thread keeps working.
TEST(Release, ForkChildStartsItsOwnThread) {
  Rng rng(4);
  std::vector<void *> v = mixed(rng, 256 * kMiB);
  free_shuffled(rng, v);
  auto t0 = Clock::now();
  while (threads() != 2 && since(t0) < 5.0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(threads(), 2);
  pid_t pid = fork();
  if (pid == 0) {
    int code = 0;
    if (threads() != 1) code |= 1;
    size_t start = rss_bytes();
    Rng r(5);
    std::vector<void *> w = mixed(r, 256 * kMiB);
    free_shuffled(r, w);
    auto c0 = Clock::now();
    size_t idle = wait_rss_below(start + 64 * kMiB, 5.0, c0);
    if (idle > start + 64 * kMiB) code |= 2;
    if (threads() != 2) code |= 4;
    _exit(code);
  }
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died: status " << status;
  EXPECT_EQ(WEXITSTATUS(status) & 1, 0) << "the child inherited a thread count other than 1";
  EXPECT_EQ(WEXITSTATUS(status) & 2, 0) << "the child's RSS did not come back within 5 s";
  EXPECT_EQ(WEXITSTATUS(status) & 4, 0) << "the child did not start its own release thread";
  // The parent's thread still releases.
  size_t start = rss_bytes();
  v = mixed(rng, 128 * kMiB);
  free_shuffled(rng, v);
  size_t idle = wait_rss_below(start + 64 * kMiB, 5.0, Clock::now());
  EXPECT_LE(idle, start + 64 * kMiB);
}

// SPANALLOC_BACKGROUND=0: no thread, and an idle program keeps its memory.
TEST(Release, BackgroundCanBeTurnedOff) {
  std::string out;
  int status = run_helper({"SPANALLOC_BACKGROUND=0"}, {"idle-keeps", "256"}, &out);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
}

// mallopt: M_TRIM_THRESHOLD and M_TOP_PAD are honoured (1), the rest are
// not (0). A threshold above what the program frees keeps it (no thread);
// back to 0, the next free lets the memory go.
TEST(Release, MalloptTrimThresholdAndTopPad) {
  EXPECT_EQ(mallopt(M_TOP_PAD, 0), 1);
  EXPECT_EQ(mallopt(M_TOP_PAD, -1), 0);
  EXPECT_EQ(mallopt(M_MMAP_THRESHOLD, 1 << 20), 0);
  EXPECT_EQ(mallopt(M_ARENA_MAX, 1), 0);
  EXPECT_EQ(mallopt(M_TRIM_THRESHOLD, 1 << 30), 1);
  size_t start = rss_bytes();
  Rng rng(6);
  std::vector<void *> v = mixed(rng, 256 * kMiB);
  free_shuffled(rng, v);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  size_t kept = rss_bytes();
  EXPECT_GT(kept, start + 128 * kMiB) << "M_TRIM_THRESHOLD=1 GiB: freed memory should stay";
  EXPECT_EQ(threads(), 1);
  EXPECT_EQ(mallopt(M_TRIM_THRESHOLD, 0), 1);
  free(malloc(4 * kMiB));  // a heap operation after the change
  size_t idle = wait_rss_below(start + 64 * kMiB, 5.0, Clock::now());
  EXPECT_LE(idle, start + 64 * kMiB) << "M_TRIM_THRESHOLD=0: RSS " << idle / kMiB << " MiB, kept " << kept / kMiB;
}

// The environment form, read at start-up as glibc does.
TEST(Release, GlibcTrimThresholdEnvironment) {
  std::string out;
  int status = run_helper({"MALLOC_TRIM_THRESHOLD_=1073741824"}, {"idle-keeps", "256"}, &out);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
}

// SPANALLOC_MEMORY_LIMIT is soft: allocations beyond it succeed; the report
// names the limit and its source; a bad value warns once and is ignored.
TEST(Release, MemoryLimitNeverFailsAnAllocation) {
  std::string out;
  int status = run_helper({"SPANALLOC_MEMORY_LIMIT=8M"}, {"alloc", "100"}, &out);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  EXPECT_NE(out.find("memory limit: 8.0 MiB (from SPANALLOC_MEMORY_LIMIT)"), std::string::npos) << out;
  status = run_helper({"SPANALLOC_MEMORY_LIMIT=lots"}, {"alloc", "4"}, &out);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  size_t first = out.find("spanalloc: ignoring SPANALLOC_MEMORY_LIMIT=lots");
  EXPECT_NE(first, std::string::npos) << out;
  EXPECT_EQ(out.find("ignoring SPANALLOC_MEMORY_LIMIT", first + 20), std::string::npos) << "warned more than once:\n" << out;
}

// A v1 memory cgroup of 200 MiB (no swap here): a workload whose live set
// (one block of ~120 MiB) fits, but whose churn (each block a little larger
// than the last, so a freed block never fits the next) would not without
// release, completes with the limit read from the cgroup and with
// SPANALLOC_MEMORY_LIMIT; with release disabled the kernel kills it.
TEST(Release, MemoryLimitInCgroupV1) {
  if (geteuid() != 0 || access("/sys/fs/cgroup/memory/cgroup.procs", W_OK) != 0) {
    printf("no writable cgroup v1 memory controller (not root, or cgroup v2 only): the cgroup check cannot run\n");
    return;
  }
  std::string own;
  {
    std::ifstream f("/proc/self/cgroup");
    std::string line;
    while (std::getline(f, line)) {
      size_t a = line.find(':'), b = line.find(':', a + 1);
      if (line.substr(a + 1, b - a - 1) == "memory") own = line.substr(b + 1);
    }
  }
  std::string dir = "/sys/fs/cgroup/memory" + (own == "/" ? std::string() : own) + "/spanalloc-release-" +
                    std::to_string(getpid());
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << dir << ": " << strerror(errno);
  {
    std::ofstream(dir + "/memory.limit_in_bytes") << 200 * kMiB;
    std::ofstream(dir + "/memory.swappiness") << 0;
  }
  std::string out;
  std::vector<std::string> churn = {"big-churn", "120", "24"};
  int with_cgroup = run_helper({}, churn, &out, dir);
  std::string out_cgroup = out;
  int with_env = run_helper({"SPANALLOC_CGROUP_LIMIT=0", "SPANALLOC_MEMORY_LIMIT=200M"}, churn, &out, dir);
  std::string out_env = out;
  int without = run_helper({"SPANALLOC_MEMORY_LIMIT=0", "SPANALLOC_BACKGROUND=0", "SPANALLOC_RELEASE_DELAY_MS=3600000"},
                           churn, &out, dir);
  std::string out_without = out;
  rmdir(dir.c_str());
  EXPECT_TRUE(WIFEXITED(with_cgroup) && WEXITSTATUS(with_cgroup) == 0)
      << "limit from the cgroup: status " << with_cgroup << "\n" << out_cgroup;
  EXPECT_TRUE(WIFEXITED(with_env) && WEXITSTATUS(with_env) == 0)
      << "SPANALLOC_MEMORY_LIMIT: status " << with_env << "\n" << out_env;
  EXPECT_TRUE(WIFSIGNALED(without) && WTERMSIG(without) == SIGKILL)
      << "release disabled: expected the OOM killer, got status " << without << "\n" << out_without;
}
