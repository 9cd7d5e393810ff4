#include "report.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <cstring>

#include "allocator.h"
#include "options.h"
#include "spanalloc.h"
#include "stats.h"

namespace spanalloc {

namespace {

// Buffered output to a descriptor or a stdio stream, without allocating
// (stdio may allocate its own buffer). Lines longer than the buffer are cut.
class Out {
 public:
  explicit Out(int fd) : fd_(fd) {}
  explicit Out(FILE *f) : file_(f) {}
  ~Out() { Flush(); }

  SPANALLOC_RARE void Printf(const char *fmt, ...) __attribute__((format(printf, 2, 3))) {
    va_list ap;
    for (int attempt = 0; attempt < 2; attempt++) {
      va_start(ap, fmt);
      int n = vsnprintf(buf_ + len_, sizeof buf_ - len_, fmt, ap);
      va_end(ap);
      if (n < 0) return;
      if (len_ + size_t(n) < sizeof buf_) {
        len_ += size_t(n);
        return;
      }
      if (attempt == 0 && len_ > 0) {
        Flush();
        continue;
      }
      len_ = sizeof buf_ - 1;  // cut
      return;
    }
  }
  void Put(char c) {
    if (len_ + 1 >= sizeof buf_) Flush();
    buf_[len_++] = c;
  }
  // s as a JSON string, quotes included.
  SPANALLOC_RARE void JsonString(const char *s) {
    Put('"');
    for (; *s; s++) {
      unsigned char c = static_cast<unsigned char>(*s);
      if (c == '"' || c == '\\') {
        Put('\\');
        Put(char(c));
      } else if (c < 0x20) {
        Printf("\\u%04x", c);
      } else {
        Put(char(c));
      }
    }
    Put('"');
  }
  // Writes what is buffered; false if any write so far failed.
  SPANALLOC_RARE bool Flush() {
    const char *p = buf_;
    size_t left = len_;
    len_ = 0;
    if (file_ != nullptr) {
      if (left && fwrite(p, 1, left, file_) != left) ok_ = false;
      return ok_;
    }
    while (left > 0) {
      ssize_t n = write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ok_ = false;
        break;
      }
      p += n;
      left -= size_t(n);
    }
    return ok_;
  }

 private:
  int fd_ = -1;
  FILE *file_ = nullptr;
  bool ok_ = true;
  size_t len_ = 0;
  char buf_[4096];
};

double MiB(uint64_t b) { return double(b) / (1024.0 * 1024.0); }

SPANALLOC_RARE bool WriteText(int fd) {
  spanalloc_stats s;
  GatherStats(&s);
  Out out(fd);
  out.Printf("------------------------------------------------ spanalloc report\n");
  for (const TotalStat &t : kTotalStats) {
    uint64_t v = s.*t.field;
    if (t.unit == StatUnit::kBytes)
      out.Printf("%12.1f MiB  %s\n", MiB(v), t.meaning);
    else
      out.Printf("%12llu      %s\n", (unsigned long long)v, t.meaning);
  }
  out.Printf("per size class (only classes with spans or free objects):\n ");
  for (const ClassStat &c : kClassStats) out.Printf(" %*s", c.width, c.header);
  out.Printf("\n");
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    ClassStats cs;
    if (!GatherClassStats(cl, &cs)) continue;
    out.Printf(" ");
    for (const ClassStat &c : kClassStats) out.Printf(" %*llu", c.width, (unsigned long long)(cs.*c.field));
    out.Printf("\n");
  }
  out.Printf("options:\n");
  bool ok = out.Flush();
  PrintOptions(fd);  // the table, then the memory limit and its source
  return ok;
}

// One option of the report's "options" object (ForEachOption's callback).
struct OptionsJson {
  Out *out;
  const char *sep;
};
SPANALLOC_RARE void WriteOptionJson(const OptionValue &v, void *p) {
  OptionsJson *c = static_cast<OptionsJson *>(p);
  c->out->Printf("%s\"%s\": ", c->sep, v.name);
  if (v.text)
    c->out->JsonString(v.text);
  else
    c->out->Printf("%llu", (unsigned long long)v.number);
  c->sep = ",\n    ";
}

SPANALLOC_RARE bool WriteJson(int fd) {
  spanalloc_stats s;
  GatherStats(&s);
  Out out(fd);
  out.Printf("{\n  \"version\": \"%d.%d.%d\",\n  \"pid\": %d,\n  \"totals\": {", SPANALLOC_VERSION_MAJOR,
             SPANALLOC_VERSION_MINOR, SPANALLOC_VERSION_PATCH, int(getpid()));
  const char *sep = "\n    ";
  for (const TotalStat &t : kTotalStats) {
    out.Printf("%s\"%s\": %llu", sep, t.key, (unsigned long long)(s.*t.field));
    sep = ",\n    ";
  }
  out.Printf("\n  },\n  \"memory_limit\": %llu,\n  \"memory_limit_source\": ",
             (unsigned long long)g_options.memory_limit_bytes);
  out.JsonString(g_options.memory_limit_source);
  out.Printf(",\n  \"cgroup_limit\": %llu,\n  \"options\": {", (unsigned long long)g_options.cgroup_limit_bytes);
  OptionsJson ctx = {&out, "\n    "};
  ForEachOption(WriteOptionJson, &ctx);
  out.Printf("\n  },\n  \"classes\": [");
  sep = "\n    {";
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    ClassStats cs;
    if (!GatherClassStats(cl, &cs)) continue;
    out.Printf("%s", sep);
    const char *field_sep = "";
    for (const ClassStat &c : kClassStats) {
      out.Printf("%s\"%s\": %llu", field_sep, c.key, (unsigned long long)(cs.*c.field));
      field_sep = ", ";
    }
    out.Printf("}");
    sep = ",\n    {";
  }
  out.Printf("\n  ]\n}\n");
  return out.Flush();
}

// ---- the exit report --------------------------------------------------------

// stderr as it was at start-up, on a high close-on-exec descriptor, and the
// file it was then (so that a descriptor the program has since reused for
// another file is recognised and left alone). -1: none.
int g_console_fd = -1;
dev_t g_console_dev;
ino_t g_console_ino;
// SPANALLOC_REPORT_FILE made absolute against the start-up directory.
SPANALLOC_RARE_DATA char g_report_path[2 * kReportPathMax];

SPANALLOC_RARE void KeepConsole() {
  // Well above the descriptors programs and shells number themselves
  // (shells redirect to 3..9 and move their own to 10 and up).
  int floor = 1000;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur <= rlim_t(floor))
    floor = int(rl.rlim_cur / 2);
  int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, floor);
  if (fd < 0) fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return;
  g_console_dev = st.st_dev;
  g_console_ino = st.st_ino;
  g_console_fd = fd;
}

// Where messages of the exit report go: the kept stderr when it is still
// the same file, else stderr if open; -1 when neither.
SPANALLOC_RARE int ConsoleFd() {
  struct stat st;
  if (g_console_fd >= 0 && fstat(g_console_fd, &st) == 0 && st.st_dev == g_console_dev && st.st_ino == g_console_ino)
    return g_console_fd;
  return fcntl(STDERR_FILENO, F_GETFD) >= 0 ? STDERR_FILENO : -1;
}

SPANALLOC_RARE void ResolveReportPath() {
  const char *file = g_options.report_file;
  size_t pos = 0;
  if (file[0] != '/' && getcwd(g_report_path, sizeof g_report_path - kReportPathMax - 1) != nullptr) {
    pos = strlen(g_report_path);
    g_report_path[pos++] = '/';
  }
  strcpy(g_report_path + pos, file);  // fits: the option is < kReportPathMax
}

// g_report_path with each %p replaced by the process id (%% by %).
SPANALLOC_RARE bool ExpandReportPath(char *out, size_t cap) {
  size_t pos = 0;
  for (const char *s = g_report_path; *s; s++) {
    char piece[24] = {*s, '\0'};
    if (s[0] == '%' && s[1] == 'p') {
      snprintf(piece, sizeof piece, "%d", int(getpid()));
      s++;
    } else if (s[0] == '%' && s[1] == '%') {
      s++;
    }
    size_t n = strlen(piece);
    if (pos + n >= cap) return false;
    memcpy(out + pos, piece, n);
    pos += n;
  }
  out[pos] = '\0';
  return true;
}

SPANALLOC_RARE void ConsoleMessage(const char *what, const char *path, int err) {
  int fd = ConsoleFd();
  if (fd < 0) return;
  Out out(fd);
  out.Printf("spanalloc: cannot write the report to %s: %s\n", path, err ? strerrordesc_np(err) : what);
}

SPANALLOC_RARE void ReportAtExit() {
  bool json = g_options.report == ReportFormat::kJson;
  if (g_options.report_file[0] == '\0') {
    int fd = ConsoleFd();
    if (fd >= 0) json ? WriteJson(fd) : WriteText(fd);
    return;
  }
  char path[sizeof g_report_path + 32];
  if (!ExpandReportPath(path, sizeof path)) return ConsoleMessage("path too long", g_report_path, 0);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ConsoleMessage(nullptr, path, errno);
  bool ok = json ? WriteJson(fd) : WriteText(fd);
  int err = errno;
  if (close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) ConsoleMessage("write failed", path, err);
}

}  // namespace

void InitReport() {
  if (g_options.report == ReportFormat::kNone) return;
  KeepConsole();
  if (g_options.report_file[0]) ResolveReportPath();
  atexit(ReportAtExit);
}

SPANALLOC_RARE void PrintReport(int fd) { WriteText(fd); }
SPANALLOC_RARE void PrintReportJson(int fd) { WriteJson(fd); }

SPANALLOC_RARE int PrintMallocInfo(FILE *f) {
  spanalloc_stats s;
  GatherStats(&s);
  Out out(f);
  // One heap: free objects by size class (from the previous class's size + 1
  // to this one's), then glibc's totals. "fast" are the thread caches (count:
  // live caches), "rest" the central lists and the page heap (count: free
  // objects in central lists), "mmap" the large blocks in use; system is the
  // committed memory (current) and everything mapped (max), aspace the same.
  uint64_t central_objects = 0;
  out.Printf("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n");
  uint64_t from = 1;
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    ClassStats cs;
    uint64_t size = kClassShape[cl].size;
    if (GatherClassStats(cl, &cs) && cs.free_bytes) {
      uint64_t count = cs.free_in_spans + cs.in_slots;
      central_objects += count;
      out.Printf("  <size from=\"%llu\" to=\"%llu\" total=\"%llu\" count=\"%llu\"/>\n", (unsigned long long)from,
                 (unsigned long long)size, (unsigned long long)cs.free_bytes, (unsigned long long)count);
    }
    from = size + 1;
  }
  out.Printf("</sizes>\n");
  auto totals = [&](bool mmap) {
    out.Printf("<total type=\"fast\" count=\"%llu\" size=\"%llu\"/>\n", (unsigned long long)s.thread_caches,
               (unsigned long long)s.thread_cache_free);
    out.Printf("<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n", (unsigned long long)central_objects,
               (unsigned long long)(s.central_free + s.page_heap_free));
    if (mmap) out.Printf("<total type=\"mmap\" count=\"0\" size=\"%llu\"/>\n", (unsigned long long)s.in_use_large);
    out.Printf("<system type=\"current\" size=\"%llu\"/>\n<system type=\"max\" size=\"%llu\"/>\n",
               (unsigned long long)s.committed, (unsigned long long)s.mapped);
    out.Printf("<aspace type=\"total\" size=\"%llu\"/>\n<aspace type=\"mprotect\" size=\"%llu\"/>\n",
               (unsigned long long)s.mapped, (unsigned long long)s.committed);
  };
  totals(false);
  out.Printf("</heap>\n");
  totals(true);
  out.Printf("</malloc>\n");
  return out.Flush() ? 0 : -1;
}

}  // namespace spanalloc

extern "C" {
SPANALLOC_RARE SPANALLOC_EXPORT void spanalloc_print_report(int fd) {
  spanalloc::EnsureInitialized();
  spanalloc::PrintReport(fd);
}
SPANALLOC_RARE SPANALLOC_EXPORT void spanalloc_print_report_json(int fd) {
  spanalloc::EnsureInitialized();
  spanalloc::PrintReportJson(fd);
}
SPANALLOC_EXPORT int spanalloc_version(void) { return SPANALLOC_VERSION; }
}
