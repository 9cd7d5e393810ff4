#include "options.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common.h"

namespace spanalloc {

constinit Options g_options = {
    /*release_delay_ms=*/1000,
    /*free_cap_bytes=*/uint64_t{64} << 20,
    /*thread_cache_bytes=*/uint64_t{4} << 20,
    /*report_at_exit=*/false,
    /*cgroup_aware=*/true,
    /*full_checks=*/false,
    /*cgroup_limit_bytes=*/0,
};

namespace {

// kChecks: the word "default" (false) or "full" (true).
enum class Kind { kUnsigned, kBool, kChecks };

struct OptionSpec {
  const char *name;
  Kind kind;
  uint64_t scale;  // value in the environment times scale = stored value
  uint64_t min, max;
  void *field;
  const char *meaning;
};

const OptionSpec kOptions[] = {
    {"SPANALLOC_RELEASE_DELAY_MS", Kind::kUnsigned, 1, 0, 3600 * 1000, &g_options.release_delay_ms,
     "free pages unused this long (ms) are returned to the OS"},
    {"SPANALLOC_FREE_CAP_MB", Kind::kUnsigned, uint64_t{1} << 20, 0, uint64_t{1} << 20, &g_options.free_cap_bytes,
     "floor of the free committed memory kept before the delay; above max(this, peak in use) the oldest goes back at once (MiB)"},
    {"SPANALLOC_THREAD_CACHE_KB", Kind::kUnsigned, 1024, 64, uint64_t{1} << 20, &g_options.thread_cache_bytes,
     "most bytes of free objects one thread's cache may hold (KiB)"},
    {"SPANALLOC_REPORT", Kind::kBool, 1, 0, 1, &g_options.report_at_exit,
     "1: print the allocator report to stderr at exit"},
    {"SPANALLOC_CGROUP_LIMIT", Kind::kBool, 1, 0, 1, &g_options.cgroup_aware,
     "1: return memory harder when the cgroup memory limit is near"},
    {"SPANALLOC_CHECKS", Kind::kChecks, 1, 0, 1, &g_options.full_checks,
     "full: also check the size given to sized delete (default: only checks free of cost)"},
};

void Warn(const char *name, const char *value, const char *why) {
  char line[256];
  snprintf(line, sizeof line, "spanalloc: ignoring %s=%s: %s\n", name, value, why);
  WriteStderr(line);
}

bool ParseUnsigned(const char *s, uint64_t *out) {
  if (*s == '\0') return false;
  uint64_t v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return false;
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, uint64_t(*s - '0'), &v)) return false;
  }
  *out = v;
  return true;
}

// Reads a small text file into buf without allocating; false if absent.
bool ReadSmallFile(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, cap - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = '\0';
  return true;
}

// The memory limit of the cgroup this process runs in, 0 if none. Looks at
// the cgroup v2 file of our own group, then at the v1 memory controller.
uint64_t ReadCgroupLimit() {
  char buf[512], path[700];
  uint64_t limit = 0;
  if (ReadSmallFile("/proc/self/cgroup", buf, sizeof buf)) {
    // v2 line: "0::/some/path"
    const char *v2 = strstr(buf, "0::");
    if (v2 && (v2 == buf || v2[-1] == '\n')) {
      const char *rel = v2 + 3;
      size_t len = strcspn(rel, "\n");
      snprintf(path, sizeof path, "/sys/fs/cgroup/%.*s/memory.max", int(len), rel);
      char val[64];
      if (ReadSmallFile(path, val, sizeof val) && ParseUnsigned(val, &limit)) return limit;
    }
  }
  char val[64];
  if (ReadSmallFile("/sys/fs/cgroup/memory/memory.limit_in_bytes", val, sizeof val) && ParseUnsigned(val, &limit)) {
    // v1 reports "no limit" as a huge page-rounded number.
    if (limit >= (uint64_t{1} << 60)) return 0;
    return limit;
  }
  return 0;
}

}  // namespace

void LoadOptions() {
  for (const OptionSpec &o : kOptions) {
    const char *v = getenv(o.name);
    if (v == nullptr) continue;
    if (o.kind == Kind::kChecks) {
      if (strcmp(v, "default") == 0 || strcmp(v, "full") == 0)
        *static_cast<bool *>(o.field) = strcmp(v, "full") == 0;
      else
        Warn(o.name, v, "expected default or full");
      continue;
    }
    uint64_t x;
    if (!ParseUnsigned(v, &x)) {
      Warn(o.name, v, o.kind == Kind::kBool ? "expected 0 or 1" : "expected a non-negative integer");
      continue;
    }
    if (x < o.min || x > o.max) {
      char why[96];
      snprintf(why, sizeof why, "out of range [%llu, %llu]", (unsigned long long)o.min, (unsigned long long)o.max);
      Warn(o.name, v, why);
      continue;
    }
    if (o.kind == Kind::kBool)
      *static_cast<bool *>(o.field) = x != 0;
    else
      *static_cast<uint64_t *>(o.field) = x * o.scale;
  }
  if (g_options.cgroup_aware) g_options.cgroup_limit_bytes = ReadCgroupLimit();
}

void PrintOptions(int fd) {
  char line[320];
  for (const OptionSpec &o : kOptions) {
    if (o.kind == Kind::kChecks) {
      int n = snprintf(line, sizeof line, "  %-28s %10s  %s\n", o.name, *static_cast<bool *>(o.field) ? "full" : "default",
                       o.meaning);
      if (n > 0 && write(fd, line, size_t(n) < sizeof line ? size_t(n) : sizeof line - 1) < 0) return;
      continue;
    }
    unsigned long long value = o.kind == Kind::kBool ? *static_cast<bool *>(o.field)
                                                     : *static_cast<uint64_t *>(o.field) / o.scale;
    int n = snprintf(line, sizeof line, "  %-28s %10llu  %s\n", o.name, value, o.meaning);
    if (n > 0 && write(fd, line, size_t(n) < sizeof line ? size_t(n) : sizeof line - 1) < 0) return;
  }
}

}  // namespace spanalloc
