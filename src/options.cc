#include "options.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "common.h"

namespace spanalloc {

constinit Options g_options = {
    /*release_delay_ms=*/1000,
    /*free_cap_bytes=*/uint64_t{64} << 20,
    /*thread_cache_bytes=*/uint64_t{4} << 20,
    /*report=*/ReportFormat::kNone,
    /*report_file=*/"",
    /*cgroup_aware=*/true,
    /*full_checks=*/false,
    /*background=*/true,
    /*hugepages=*/false,
    /*retain_bytes=*/uint64_t{4} << 20,
    /*memory_limit_bytes=*/0,
    /*memory_limit_source=*/"none",
    /*profile_rate_bytes=*/uint64_t{512} << 10,
    /*guard_sample=*/0,
    /*cgroup_limit_bytes=*/0,
    /*cache_mode=*/CacheMode::kCpu,
    /*cpu_cache_bytes=*/uint64_t{3} << 20,
};

namespace {

// kUnsigned: uint64_t field, value times scale, within [min, max].
// kBool: bool field, 0 or 1.
// kBytes: uint64_t field, bytes with an optional K, M or G suffix.
// kChoice: one-byte field (an enum, or a bool for two choices), the index
//          of the value in choices.
// kPath: char[kReportPathMax] field, any non-empty text that fits.
enum class Kind { kUnsigned, kBool, kBytes, kChoice, kPath };

struct OptionSpec {
  const char *name;
  Kind kind;
  uint64_t scale;  // value in the environment times scale = stored value
  uint64_t min, max;
  void *field;
  const char *meaning;
  const char *const *choices = nullptr;  // kChoice: the accepted spellings
};

constexpr const char *kReportChoices[] = {"0", "1", "json", nullptr};
static_assert(sizeof(ReportFormat) == 1);
constexpr const char *kCacheChoices[] = {"thread", "cpu", nullptr};
static_assert(sizeof(CacheMode) == 1);
constexpr const char *kChecksChoices[] = {"default", "full", nullptr};  // full_checks = index
static_assert(sizeof(bool) == 1);

const OptionSpec kOptions[] = {
    {"SPANALLOC_RELEASE_DELAY_MS", Kind::kUnsigned, 1, 0, 3600 * 1000, &g_options.release_delay_ms,
     "free pages unused this long (ms) are returned to the OS"},
    {"SPANALLOC_FREE_CAP_MB", Kind::kUnsigned, uint64_t{1} << 20, 0, uint64_t{1} << 20, &g_options.free_cap_bytes,
     "floor of the free committed memory kept before the delay; above max(this, peak in use) the oldest goes back at once (MiB)"},
    {"SPANALLOC_RETAIN", Kind::kBytes, 1, 0, ~uint64_t{0}, &g_options.retain_bytes,
     "free committed memory kept past the delay (bytes, K/M/G; mallopt M_TRIM_THRESHOLD + M_TOP_PAD)"},
    {"SPANALLOC_BACKGROUND", Kind::kBool, 1, 0, 1, &g_options.background,
     "1: a background thread returns free memory when the program is idle (started only when needed)"},
    {"SPANALLOC_HUGEPAGES", Kind::kBool, 1, 0, 1, &g_options.hugepages,
     "1: ask for transparent huge pages (MADV_HUGEPAGE) and release whole 2 MiB ranges"},
    {"SPANALLOC_MEMORY_LIMIT", Kind::kBytes, 1, 0, ~uint64_t{0}, &g_options.memory_limit_bytes,
     "soft memory limit (bytes, K/M/G; 0: none); near it all free memory goes back before the heap grows; unset: cgroup"},
    {"SPANALLOC_THREAD_CACHE_KB", Kind::kUnsigned, 1024, 64, uint64_t{1} << 20, &g_options.thread_cache_bytes,
     "most bytes of free objects one thread's cache may hold (KiB; cpu mode: per CPU, shared by the threads)"},
    {"SPANALLOC_CACHE", Kind::kChoice, 1, 0, 1, &g_options.cache_mode,
     "cpu: per-CPU caches on rseq behind small thread caches (thread where glibc registers no rseq area); thread: thread caches only",
     kCacheChoices},
    {"SPANALLOC_CPU_CACHE_KB", Kind::kUnsigned, 1024, 0, uint64_t{1} << 20, &g_options.cpu_cache_bytes,
     "most bytes of free objects one CPU's cache holds (KiB; SPANALLOC_CACHE=cpu)"},
    {"SPANALLOC_REPORT", Kind::kChoice, 1, 0, 2, &g_options.report,
     "1: write the allocator report at exit, as text; json: as JSON", kReportChoices},
    {"SPANALLOC_REPORT_FILE", Kind::kPath, 1, 0, 0, &g_options.report_file,
     "the exit report goes to this file (created then; %p: the process id), not stderr"},
    {"SPANALLOC_CGROUP_LIMIT", Kind::kBool, 1, 0, 1, &g_options.cgroup_aware,
     "1: without SPANALLOC_MEMORY_LIMIT, the cgroup's memory limit is the limit"},
    {"SPANALLOC_CHECKS", Kind::kChoice, 1, 0, 1, &g_options.full_checks,
     "full: also check the size given to sized delete (default: only checks free of cost)", kChecksChoices},
    {"SPANALLOC_PROFILE_RATE", Kind::kUnsigned, 1, 0, uint64_t{1} << 40, &g_options.profile_rate_bytes,
     "with SPANALLOC_PROFILE=PATH: mean bytes allocated between heap-profile samples (0: none)"},
    {"SPANALLOC_GUARD_SAMPLE", Kind::kUnsigned, 1, 0, uint64_t{1} << 40, &g_options.guard_sample,
     "N: about one allocation in N gets guard pages (overflow, use after free); 0: off"},
};

SPANALLOC_RARE void Warn(const char *name, const char *value, const char *why) {
  char line[256];
  // A long value is cut, so that the reason and the newline always fit.
  int max = 96;
  snprintf(line, sizeof line, "spanalloc: ignoring %s=%.*s%s: %s\n", name, max, value,
           strlen(value) > size_t(max) ? "..." : "", why);
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

// Appends text (len bytes) at *pos in buf (cap bytes, kept NUL-terminated);
// false if it does not fit.
bool Append(char *buf, size_t cap, size_t *pos, const char *text, size_t len) {
  if (len >= cap - *pos) return false;
  memcpy(buf + *pos, text, len);
  *pos += len;
  buf[*pos] = '\0';
  return true;
}

// The smallest limit in file `leaf` of the groups along rel (our group and
// its ancestors) under mount; 0 if none. Values at or above 2^60 mean "no
// limit" (v1 writes a huge page-rounded number, v2 writes "max").
uint64_t SmallestLimitOnPath(const char *mount, const char *rel, size_t len, const char *leaf) {
  char path[700], val[64];
  uint64_t best = 0;
  for (;;) {
    size_t pos = 0;
    uint64_t limit;
    if (Append(path, sizeof path, &pos, mount, strlen(mount)) && Append(path, sizeof path, &pos, rel, len) &&
        Append(path, sizeof path, &pos, "/", 1) && Append(path, sizeof path, &pos, leaf, strlen(leaf)) &&
        ReadSmallFile(path, val, sizeof val) && ParseUnsigned(val, &limit) && limit < (uint64_t{1} << 60) &&
        (best == 0 || limit < best))
      best = limit;
    if (len == 0) return best;
    while (len > 0 && rel[len - 1] != '/') len--;  // parent group
    if (len > 0) len--;
  }
}

// The memory limit of the cgroup this process runs in, 0 if none, and where
// it was found. Our group's path comes from /proc/self/cgroup: the v2 line
// "0::/path", or the v1 line naming the memory controller ("N:memory:/path").
// The lines are scanned by hand, not with strcspn, memchr or snprintf: every
// program runs this at start-up, and those functions sit in pages of libc
// that a program which does not call them itself would map only for this
// (the kernel maps 64 KiB of a library around each page it faults in).
uint64_t ReadCgroupLimit(const char **source) {
  char buf[2048];
  if (!ReadSmallFile("/proc/self/cgroup", buf, sizeof buf)) return 0;
  for (char *line = buf; *line;) {
    size_t len = 0;
    while (line[len] != '\0' && line[len] != '\n') len++;
    // "N:controllers:path": the two colons (the path may hold more).
    size_t colon1 = 0, colon2 = 0;
    while (colon1 < len && line[colon1] != ':') colon1++;
    if (colon1 < len) {
      colon2 = colon1 + 1;
      while (colon2 < len && line[colon2] != ':') colon2++;
    }
    if (colon1 < len && colon2 < len) {
      const char *rel = line + colon2 + 1;
      size_t rel_len = len - colon2 - 1;
      if (rel_len == 1 && rel[0] == '/') rel_len = 0;
      const char *ctl = line + colon1 + 1;
      size_t ctl_len = colon2 - colon1 - 1;
      uint64_t limit = 0;
      if (ctl_len == 0 && colon1 == 1 && line[0] == '0') {
        limit = SmallestLimitOnPath("/sys/fs/cgroup", rel, rel_len, "memory.max");
        if (limit) *source = "cgroup v2 memory.max";
      } else if (ctl_len == 6 && memcmp(ctl, "memory", 6) == 0) {
        limit = SmallestLimitOnPath("/sys/fs/cgroup/memory", rel, rel_len, "memory.limit_in_bytes");
        if (limit) *source = "cgroup v1 memory.limit_in_bytes";
      }
      if (limit) return limit;
    }
    line += len;
    if (*line == '\n') line++;
  }
  return 0;
}

// glibc tunables as last set by mallopt or the environment.
struct GlibcTunables {
  bool trim_set;
  long trim;
  long pad;
  uint64_t base_retain;  // SPANALLOC_RETAIN (or its default)
};
constinit GlibcTunables g_glibc = {false, 0, 0, 0};
constinit bool g_glibc_loaded = false;

SPANALLOC_RARE void ApplyGlibcTunables() {
  uint64_t retain;
  if (g_glibc.trim_set && g_glibc.trim < 0) {
    retain = ~uint64_t{0};  // glibc: a negative threshold turns trimming off
  } else {
    uint64_t base = g_glibc.trim_set ? uint64_t(g_glibc.trim) : g_glibc.base_retain;
    if (__builtin_add_overflow(base, uint64_t(g_glibc.pad), &retain)) retain = ~uint64_t{0};
  }
  __atomic_store_n(&g_options.retain_bytes, retain, __ATOMIC_RELAXED);
}

// Reads one option that is not a number; false (and a warning) if v is bad.
SPANALLOC_RARE bool LoadText(const OptionSpec &o, const char *v) {
  if (o.kind == Kind::kPath) {
    size_t len = strlen(v);
    if (len == 0 || len >= kReportPathMax) {
      Warn(o.name, v, len == 0 ? "expected a path" : "path too long");
      return false;
    }
    memcpy(o.field, v, len + 1);
    return true;
  }
  for (int i = 0; o.choices[i]; i++) {
    if (strcmp(v, o.choices[i]) == 0) {
      *static_cast<uint8_t *>(o.field) = uint8_t(i);
      return true;
    }
  }
  // "expected a or b", "expected a, b or c"
  char why[96];
  int pos = snprintf(why, sizeof why, "expected");
  for (int i = 0; o.choices[i] && pos > 0 && size_t(pos) < sizeof why; i++) {
    const char *sep = i == 0 ? " " : o.choices[i + 1] ? ", " : " or ";
    pos += snprintf(why + pos, sizeof why - size_t(pos), "%s%s", sep, o.choices[i]);
  }
  Warn(o.name, v, why);
  return false;
}

}  // namespace

SPANALLOC_RARE bool ParseBytes(const char *s, uint64_t *out) {
  char digits[32];
  size_t n = strlen(s);
  if (n == 0 || n >= sizeof digits) return false;
  uint64_t shift = 0;
  switch (s[n - 1]) {
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    default: break;
  }
  if (shift) n--;
  memcpy(digits, s, n);
  digits[n] = '\0';
  uint64_t v;
  if (!ParseUnsigned(digits, &v)) return false;
  if (shift && v > (~uint64_t{0} >> shift)) return false;
  *out = v << shift;
  return true;
}

SPANALLOC_RARE bool SetGlibcTunable(GlibcTunable which, long value) {
  if (!g_glibc_loaded) {
    g_glibc.base_retain = g_options.retain_bytes;
    g_glibc_loaded = true;
  }
  if (which == GlibcTunable::kTopPad) {
    if (value < 0) return false;
    g_glibc.pad = value;
  } else {
    g_glibc.trim_set = true;
    g_glibc.trim = value;
  }
  ApplyGlibcTunables();
  return true;
}

void LoadOptions() {
  bool limit_set = false;
  for (const OptionSpec &o : kOptions) {
    const char *v = getenv(o.name);
    if (v == nullptr) continue;
    if (o.kind == Kind::kChoice || o.kind == Kind::kPath) {
      LoadText(o, v);
      continue;
    }
    uint64_t x;
    bool ok = o.kind == Kind::kBytes ? ParseBytes(v, &x) : ParseUnsigned(v, &x);
    if (!ok) {
      Warn(o.name, v,
           o.kind == Kind::kBool    ? "expected 0 or 1"
           : o.kind == Kind::kBytes ? "expected bytes, optionally with a K, M or G suffix"
                                    : "expected a non-negative integer");
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
    if (o.field == &g_options.memory_limit_bytes) limit_set = true;
  }
  g_options.cgroup_limit_bytes = 0;
  const char *cgroup_source = "none";
  if (g_options.cgroup_aware) g_options.cgroup_limit_bytes = ReadCgroupLimit(&cgroup_source);
  if (limit_set) {
    g_options.memory_limit_source = g_options.memory_limit_bytes ? "SPANALLOC_MEMORY_LIMIT" : "none (SPANALLOC_MEMORY_LIMIT=0)";
  } else {
    g_options.memory_limit_bytes = g_options.cgroup_limit_bytes;
    g_options.memory_limit_source = g_options.cgroup_limit_bytes ? cgroup_source : "none";
  }
  // glibc's environment tunables (bytes, as glibc reads them).
  g_glibc = GlibcTunables{false, 0, 0, g_options.retain_bytes};
  g_glibc_loaded = true;
  for (const char *name : {"MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"}) {
    const char *v = getenv(name);
    uint64_t x;
    if (v == nullptr) continue;
    if (!ParseUnsigned(v, &x) || x > uint64_t(~0ul >> 1)) {
      Warn(name, v, "expected a non-negative integer");
      continue;
    }
    SetGlibcTunable(name[7] == 'T' && name[8] == 'R' ? GlibcTunable::kTrimThreshold : GlibcTunable::kTopPad, long(x));
  }
}

SPANALLOC_RARE void ForEachOption(void (*fn)(const OptionValue &v, void *ctx), void *ctx) {
  for (const OptionSpec &o : kOptions) {
    OptionValue v = {o.name, o.meaning, 0, nullptr};
    switch (o.kind) {
      case Kind::kUnsigned:
      case Kind::kBytes:
        v.number = *static_cast<uint64_t *>(o.field) / o.scale;
        break;
      case Kind::kBool:
        v.number = *static_cast<bool *>(o.field);
        break;
      case Kind::kChoice:
        v.text = o.choices[*static_cast<uint8_t *>(o.field)];
        break;
      case Kind::kPath:
        v.text = static_cast<const char *>(o.field);
        break;
    }
    fn(v, ctx);
  }
}

SPANALLOC_RARE void PrintOptions(int fd) {
  ForEachOption(
      [](const OptionValue &v, void *ctx) SPANALLOC_RARE {
        char line[2 * kReportPathMax];
        int n = v.text ? snprintf(line, sizeof line, "  %-28s %10s  %s\n", v.name, v.text[0] ? v.text : "-", v.meaning)
                       : snprintf(line, sizeof line, "  %-28s %10llu  %s\n", v.name, (unsigned long long)v.number,
                                  v.meaning);
        if (n > 0 && write(*static_cast<int *>(ctx), line, size_t(n) < sizeof line ? size_t(n) : sizeof line - 1) < 0)
          return;
      },
      &fd);
  char line[320];
  int n;
  if (g_options.memory_limit_bytes)
    n = snprintf(line, sizeof line, "  memory limit: %.1f MiB (from %s)\n",
                 double(g_options.memory_limit_bytes) / (1024.0 * 1024.0), g_options.memory_limit_source);
  else
    n = snprintf(line, sizeof line, "  memory limit: none (from %s)\n", g_options.memory_limit_source);
  if (n > 0 && write(fd, line, size_t(n) < sizeof line ? size_t(n) : sizeof line - 1) < 0) return;
}

}  // namespace spanalloc
