// See heap_profile.h for the format and when profiles are written.
#include "heap_profile.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "allocator.h"
#include "fd_writer.h"
#include "os_memory.h"
#include "sampler.h"

namespace spanalloc {

constinit std::atomic<int> g_profile_requests{0};

namespace {

constexpr size_t kMaxPath = 4096;
SPANALLOC_RARE_DATA char g_path_template[kMaxPath];  // SPANALLOC_PROFILE, written once at init
bool g_enabled = false;
int g_signal = 0;
std::atomic<uint32_t> g_signal_dumps{0};  // suffix of the last signal-requested profile

struct Entry {
  double objects;
  double bytes;
  uint32_t depth;
  uintptr_t stack[kMaxFrames];
};

// Memory for the snapshot, straight from the OS (never malloc).
template <typename T>
class MappedArray {
 public:
  explicit MappedArray(size_t n) : bytes_((n * sizeof(T) + kPageSize - 1) & ~(kPageSize - 1)) {
    if (bytes_ != 0) data_ = static_cast<T *>(OsMap(bytes_, kPageSize));
  }
  ~MappedArray() {
    if (data_ != nullptr) OsUnmap(data_, bytes_);
  }
  MappedArray(const MappedArray &) = delete;
  MappedArray &operator=(const MappedArray &) = delete;
  T *get() { return data_; }
  size_t capacity() const { return bytes_ / sizeof(T); }

 private:
  size_t bytes_;
  T *data_ = nullptr;
};

SPANALLOC_RARE size_t CountLiveLocked() {
  size_t n = 0;
  for (SampleRecord *r = LiveRecordsLocked(); r != nullptr; r = r->next) n++;
  return n;
}

SPANALLOC_RARE bool SameStack(const Entry &a, const Entry &b) {
  return a.depth == b.depth && memcmp(a.stack, b.stack, a.depth * sizeof(uintptr_t)) == 0;
}

// Orders entries by depth, then by stack.
SPANALLOC_RARE bool StackLess(const Entry &x, const Entry &y) {
  if (x.depth != y.depth) return x.depth < y.depth;
  return memcmp(x.stack, y.stack, x.depth * sizeof(uintptr_t)) < 0;
}

// Sorts idx[0, n) (indexes of ent) by StackLess: a heap sort written here,
// since std::sort's code would be instantiated outside the rare section.
SPANALLOC_RARE void SortByStack(uint32_t *idx, size_t n, const Entry *ent) {
  auto sift_down = [&](size_t root, size_t end) {
    for (;;) {
      size_t child = 2 * root + 1;
      if (child >= end) return;
      if (child + 1 < end && StackLess(ent[idx[child]], ent[idx[child + 1]])) child++;
      if (!StackLess(ent[idx[root]], ent[idx[child]])) return;
      uint32_t t = idx[root];
      idx[root] = idx[child];
      idx[child] = t;
      root = child;
    }
  };
  for (size_t i = n / 2; i-- > 0;) sift_down(i, n);
  for (size_t end = n; end > 1; end--) {
    uint32_t t = idx[0];
    idx[0] = idx[end - 1];
    idx[end - 1] = t;
    sift_down(0, end - 1);
  }
}

// Appends decimal n to buf at *pos (path building).
SPANALLOC_RARE void AppendDecimal(char *buf, size_t cap, size_t *pos, uint64_t n) {
  char d[20];
  int k = 0;
  do d[k++] = char('0' + n % 10); while ((n /= 10) != 0);
  while (k > 0 && *pos + 1 < cap) buf[(*pos)++] = d[--k];
}

// The profile path: "%p" replaced by the process id, ".<seq>" appended when
// seq != 0. False if it does not fit.
SPANALLOC_RARE bool ExpandPath(const char *tmpl, uint32_t seq, char *out, size_t cap) {
  size_t pos = 0;
  for (const char *c = tmpl; *c; c++) {
    if (c[0] == '%' && c[1] == 'p') {
      AppendDecimal(out, cap, &pos, uint64_t(getpid()));
      c++;
    } else if (pos + 1 < cap) {
      out[pos++] = *c;
    } else {
      return false;
    }
  }
  if (seq != 0 && pos + 2 < cap) {
    out[pos++] = '.';
    AppendDecimal(out, cap, &pos, seq);
  }
  if (pos + 1 >= cap) return false;
  out[pos] = '\0';
  return true;
}

SPANALLOC_RARE void WriteTemplate(uint32_t seq) {
  char path[kMaxPath + 32];
  if (!ExpandPath(g_path_template, seq, path, sizeof path)) return;
  if (int err = WriteHeapProfile(path); err != 0) {
    FdWriter w(STDERR_FILENO);
    w.Str("spanalloc: cannot write the heap profile to ").Str(path).Str(": error ").Dec(uint64_t(err)).Str("\n");
  }
}

SPANALLOC_RARE void WriteAtExit() { WriteTemplate(0); }

SPANALLOC_RARE void OnProfileSignal(int) { g_profile_requests.fetch_add(1, std::memory_order_relaxed); }

SPANALLOC_RARE int ParseSignal(const char *v) {
  if (strncmp(v, "SIG", 3) == 0) v += 3;
  if (strcmp(v, "USR1") == 0) return SIGUSR1;
  if (strcmp(v, "USR2") == 0) return SIGUSR2;
  return 0;
}

SPANALLOC_RARE void CopyMaps(int fd) {
  int in = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (in < 0) return;
  char buf[4096];
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    FdWriter w(fd);
    w.Bytes(buf, size_t(n));
  }
  close(in);
}

}  // namespace

bool HeapProfileConfigure() {
  const char *path = getenv("SPANALLOC_PROFILE");
  if (path != nullptr && path[0] != '\0') {
    if (strlen(path) >= kMaxPath) {
      WriteStderr("spanalloc: ignoring SPANALLOC_PROFILE: path too long\n");
    } else {
      memcpy(g_path_template, path, strlen(path) + 1);
      g_enabled = true;
    }
  }
  const char *sig = getenv("SPANALLOC_PROFILE_SIGNAL");
  if (sig != nullptr && sig[0] != '\0') {
    g_signal = ParseSignal(sig);
    if (g_signal == 0) {
      FdWriter w(STDERR_FILENO);
      w.Str("spanalloc: ignoring SPANALLOC_PROFILE_SIGNAL=").Str(sig).Str(": expected USR1 or USR2\n");
    } else if (!g_enabled) {
      WriteStderr("spanalloc: ignoring SPANALLOC_PROFILE_SIGNAL: SPANALLOC_PROFILE is not set\n");
      g_signal = 0;
    }
  }
  return g_enabled;
}

bool HeapProfileEnabled() { return g_enabled; }

SPANALLOC_RARE void HeapProfileStart() {
  if (!g_enabled) return;
  atexit(WriteAtExit);
  if (g_signal != 0) {
    struct sigaction sa = {};
    sa.sa_handler = OnProfileSignal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(g_signal, &sa, nullptr);
  }
}

SPANALLOC_RARE void ServeProfileRequests() {
  if (g_profile_requests.exchange(0, std::memory_order_relaxed) == 0) return;  // another thread took it
  bool was_busy = tls_sampler_busy;
  tls_sampler_busy = true;
  WriteTemplate(g_signal_dumps.fetch_add(1, std::memory_order_relaxed) + 1);
  tls_sampler_busy = was_busy;
}

SPANALLOC_RARE int WriteHeapProfile(const char *path) {
  int saved = errno;
  // Snapshot the live samples; records may come and go between counting and
  // copying, so room is left for some more (any beyond it are left out).
  size_t count;
  {
    MutexLock l(g_sample_lock);
    count = CountLiveLocked();
  }
  MappedArray<Entry> entries(count + count / 4 + 64);
  MappedArray<uint32_t> order(entries.capacity());
  if (entries.get() == nullptr || order.get() == nullptr) return ENOMEM;
  size_t n = 0;
  double rate = double(g_sampler.profile_rate ? g_sampler.profile_rate : 1);
  {
    MutexLock l(g_sample_lock);
    for (SampleRecord *r = LiveRecordsLocked(); r != nullptr && n < entries.capacity(); r = r->next) {
      Entry &e = entries.get()[n++];
      double p = SamplerOneMinusExpNeg(double(r->size) / rate);
      e.objects = 1 / p;
      e.bytes = double(r->size) / p;
      e.depth = r->depth;
      memcpy(e.stack, r->stack, r->depth * sizeof(uintptr_t));
    }
  }
  Entry *ent = entries.get();
  uint32_t *idx = order.get();
  for (size_t i = 0; i < n; i++) idx[i] = uint32_t(i);
  SortByStack(idx, n, ent);
  double total_objects = 0, total_bytes = 0;
  for (size_t i = 0; i < n; i++) {
    total_objects += ent[i].objects;
    total_bytes += ent[i].bytes;
  }

  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    errno = saved;
    return err;
  }
  bool ok;
  {
    FdWriter w(fd);
    w.Str("heap profile: ").Dec(uint64_t(total_objects + 0.5), 6).Str(": ").Dec(uint64_t(total_bytes + 0.5), 8);
    w.Str(" [     0:        0] @ heapprofile\n");
    for (size_t i = 0; i < n;) {
      const Entry &first = ent[idx[i]];
      double objects = 0, bytes = 0;
      size_t j = i;
      for (; j < n && SameStack(ent[idx[j]], first); j++) {
        objects += ent[idx[j]].objects;
        bytes += ent[idx[j]].bytes;
      }
      w.Dec(uint64_t(objects + 0.5), 6).Str(": ").Dec(uint64_t(bytes + 0.5), 8).Str(" [     0:        0] @");
      for (uint32_t k = 0; k < first.depth; k++) w.Str(" ").Hex(first.stack[k]);
      w.Str("\n");
      i = j;
    }
    w.Str("\nMAPPED_LIBRARIES:\n");
    ok = w.Flush();
  }
  if (ok) CopyMaps(fd);
  int err = ok ? 0 : errno;
  if (close(fd) != 0 && err == 0) err = errno;
  errno = saved;
  return err;
}

}  // namespace spanalloc

// ---- spanalloc_* API --------------------------------------------------------

extern "C" SPANALLOC_RARE SPANALLOC_EXPORT int spanalloc_dump_profile(const char *path) {
  if (path == nullptr || path[0] == '\0') return EINVAL;
  spanalloc::EnsureInitialized();
  bool was_busy = spanalloc::tls_sampler_busy;
  spanalloc::tls_sampler_busy = true;
  int err = spanalloc::WriteHeapProfile(path);
  spanalloc::tls_sampler_busy = was_busy;
  return err;
}
