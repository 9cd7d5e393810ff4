// file_copy.cc: see file_copy.h.
//
// How the data is found, in order of preference:
//   1. SEEK_DATA/SEEK_HOLE: holes of the source are never read; each data
//      extent goes by copy_file_range (auto) or by reading (always: zero
//      blocks inside extents become holes too; never: holes become zeros).
//   2. zero detection: where the file system reports no holes (SEEK_DATA
//      fails, or reports one extent for a file that has fewer blocks than
//      its size needs), the file is read and zero blocks become holes.
//   3. streaming: pipes, devices and the part past the measured size
//      (/proc files say 0, growing files) are read until end of file.
#include "file_copy.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "common/std_streams.h"
#include "error.h"
#include "range_copy.h"
#include "sink.h"

namespace sparsecp {

namespace {

// Closes a descriptor at scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

struct Job {
  Source src;
  Sink &sink;
  SparseMode mode;
  size_t block;
  bool offload;                 // copy_file_range still worth trying
  const char *detect = "none";  // how holes were found, for -v
  bool used_offload = false;
  bool used_read = false;
};

bool same_file(const struct stat &a, const struct stat &b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

[[noreturn]] void same_file_error(const std::string &src, const std::string &dst) {
  throw CopyError(quote(src) + " and " + quote(dst) + " are the same file");
}

struct stat stat_source(const std::string &src) {
  struct stat st;
  if (::stat(src.c_str(), &st) != 0) fail("cannot stat", src, errno);
  if (S_ISDIR(st.st_mode)) throw CopyError("omitting directory " + quote(src));
  return st;
}

// The checks on DST before it is opened: not SRC, not a directory, not a
// file this run created from another source, not a dangling symbolic link,
// and a name with a trailing slash only for a directory. Returns true when
// DST is SRC's earlier copy (a source named twice).
bool check_destination_path(const std::string &src, const struct stat &sst, const std::string &dst, const RunLog &log) {
  struct stat dl, ds;
  if (::lstat(dst.c_str(), &dl) != 0) {
    int err = errno;
    if (err != ENOENT) fail("cannot stat", dst, err);
    if (!dst.empty() && dst.back() == '/') fail("cannot create regular file", dst, ENOTDIR);
    return false;  // does not exist yet
  }
  if (::stat(dst.c_str(), &ds) != 0) {
    if (S_ISLNK(dl.st_mode) && errno == ENOENT) throw CopyError("not writing through dangling symlink " + quote(dst));
    return false;
  }
  if (same_file(sst, ds)) same_file_error(src, dst);
  if (S_ISDIR(ds.st_mode)) throw CopyError("cannot overwrite directory " + quote(dst) + " with non-directory");
  if (const FileId *from = log.source_of(FileId{ds.st_dev, ds.st_ino})) {
    if (*from == FileId{sst.st_dev, sst.st_ino}) return true;
    throw CopyError("will not overwrite just-created " + quote(dst) + " with " + quote(src));
  }
  return false;
}

// Opens DST without truncating it, checks again (race-free, on the open
// file) that it is not SRC, and only then truncates a regular file.
int open_destination(const std::string &src, const struct stat &sst, const std::string &dst, struct stat &dst_st) {
  int fd = ::open(dst.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, sst.st_mode & 0777);
  if (fd < 0) fail("cannot create regular file", dst, errno);
  Fd guard{fd};
  if (::fstat(fd, &dst_st) != 0) fail("cannot stat", dst, errno);
  if (same_file(sst, dst_st)) same_file_error(src, dst);
  // Only a non-empty file: truncating a new one costs nothing here but
  // makes ext4 flush it on close (its guard for replace-by-truncate).
  if (S_ISREG(dst_st.st_mode) && dst_st.st_size > 0 && ::ftruncate(fd, 0) != 0) fail("cannot truncate", dst, errno);
  guard.fd = -1;
  return fd;
}

size_t hole_block(const struct stat &dst_st) {
  size_t b = dst_st.st_blksize > 0 ? static_cast<size_t>(dst_st.st_blksize) : 4096;
  b = std::clamp<size_t>(b, 512, 1 << 20);
  return (b & (b - 1)) == 0 ? b : 4096;  // a power of two, or the usual page
}

// The size now, clamped to [lo, hi]: the source shrank while being copied.
off_t shrunk_end(const Job &job, off_t lo, off_t hi) {
  struct stat st;
  if (::fstat(job.src.fd, &st) != 0) fail("cannot stat", job.src.name, errno);
  return std::clamp<off_t>(st.st_size, lo, hi);
}

// Copies the data extent [off, end); returns the offset reached.
off_t copy_extent(Job &job, off_t off, off_t end) {
  if (off >= end) return off;
  if (job.offload) {
    off_t start = off;
    off = copy_by_offload(job.src, job.sink, off, end, job.offload);
    job.used_offload = job.used_offload || off > start;
    if (off >= end) return off;
  }
  job.used_read = true;
  bool holes = job.mode == SparseMode::Always;
  return copy_by_reading(job.src, job.sink, off, end, holes, job.block);
}

// Walks the extents of [0, size) with SEEK_DATA/SEEK_HOLE; returns the end.
off_t copy_extents(Job &job, off_t size) {
  off_t off = 0;
  while (off < size) {
    off_t data = ::lseek(job.src.fd, off, SEEK_DATA);
    if (data < 0 && errno != ENXIO) fail("cannot seek in", job.src.name, errno);
    if (data < 0 || data >= size) {  // only a hole is left
      off_t end = data < 0 ? shrunk_end(job, off, size) : size;
      job.sink.hole(off, end - off);
      return end;
    }
    off_t hole = ::lseek(job.src.fd, data, SEEK_HOLE);
    if (hole < 0 && errno != ENXIO) fail("cannot seek in", job.src.name, errno);
    if (hole < 0) return shrunk_end(job, off, data);
    job.sink.hole(off, data - off);
    off_t end = std::min(hole, size);
    off = copy_extent(job, data, end);
    if (off < end) return off;  // shrank under us
  }
  return off;
}

// How the holes of a regular source can be found.
enum class Scan { Extents, Zeros, Plain };

// True when SEEK_DATA/SEEK_HOLE report the holes of this file system;
// throws on errors other than "not supported".
bool seek_reports_holes(const Job &job, const struct stat &st, bool looks_sparse) {
  off_t data = ::lseek(job.src.fd, 0, SEEK_DATA);
  if (data < 0 && errno == ENXIO) return true;  // no data at all
  if (data < 0 && (errno == EINVAL || errno == EOPNOTSUPP || errno == ENOTSUP)) return false;
  if (data < 0) fail("cannot seek in", job.src.name, errno);
  if (data > 0 || !looks_sparse) return true;
  // Fewer blocks than the size needs, yet one extent from 0 to the end:
  // the file system supports SEEK_HOLE only trivially.
  off_t hole = ::lseek(job.src.fd, 0, SEEK_HOLE);
  if (hole < 0) fail("cannot seek in", job.src.name, errno);
  return hole < st.st_size;
}

// auto follows GNU cp: only a source with fewer blocks than its size needs
// is treated as sparse. always and never use SEEK_HOLE on any source, so
// that they too never read a hole.
Scan choose_scan(const Job &job, const struct stat &st) {
  bool looks_sparse = st.st_blocks < st.st_size / 512;
  if (job.mode == SparseMode::Auto && !looks_sparse) return Scan::Plain;
  if (seek_reports_holes(job, st, looks_sparse)) return Scan::Extents;
  return job.mode == SparseMode::Never ? Scan::Plain : Scan::Zeros;
}

// Copies [0, size) of a regular source; returns the end reached.
off_t copy_regular(Job &job, const struct stat &st) {
  switch (choose_scan(job, st)) {
    case Scan::Extents:
      job.detect = job.mode == SparseMode::Always ? "SEEK_HOLE + zeros" : "SEEK_HOLE";
      return copy_extents(job, st.st_size);
    case Scan::Zeros:
      job.detect = "zeros";
      job.used_read = true;
      return copy_by_reading(job.src, job.sink, 0, st.st_size, true, job.block);
    case Scan::Plain:
      break;
  }
  return copy_extent(job, 0, st.st_size);
}

// Copies the whole source; returns its length.
off_t copy_all(Job &job, const struct stat &st) {
  off_t end = 0;
  if (S_ISREG(st.st_mode)) {
    end = copy_regular(job, st);
    if (end < st.st_size) return end;  // shrank: nothing follows
  }
  // Streams, /proc files (size 0) and growth past the measured size.
  off_t before = job.sink.data_bytes();
  bool holes = job.mode == SparseMode::Always;
  end = copy_by_reading(job.src, job.sink, end, -1, holes, job.block);
  job.used_read = job.used_read || static_cast<off_t>(job.sink.data_bytes()) > before || !S_ISREG(st.st_mode);
  return end;
}

const char *transfer_name(const Job &job) {
  if (job.used_offload && job.used_read) return "copy_file_range + read/write";
  if (job.used_offload) return "copy_file_range";
  if (job.used_read) return "read/write";
  return "no data";
}

void report(const Job &job, const std::string &src, const std::string &dst, off_t size) {
  unsigned long long data = job.sink.data_bytes();
  unsigned long long total = static_cast<unsigned long long>(size);
  unsigned long long holes = total > data ? total - data : 0;
  char line[256];
  std::snprintf(line, sizeof line, ": %llu extents, %llu bytes data, %llu bytes %s (holes: %s; data: %s)\n",
                static_cast<unsigned long long>(job.sink.runs()), data, holes,
                job.sink.keeps_holes() ? "holes" : "zeros written", job.detect, transfer_name(job));
  toolkit::write_stdout(quote(src) + " -> " + quote(dst) + line);  // a failure is reported at exit
}

// The size of a regular source now, if it shrank (below its size at the
// start, SST) while it was copied: the copy must end where the source
// ends. END otherwise, also for /proc and /sys files, whose size (0, 4096)
// says nothing about their content.
off_t final_size(int fd, const std::string &name, const struct stat &sst, off_t end) {
  if (!S_ISREG(sst.st_mode)) return end;
  struct stat now;
  if (::fstat(fd, &now) != 0) fail("cannot stat", name, errno);
  return now.st_size < sst.st_size ? std::min(end, now.st_size) : end;
}

// FICLONE: the destination shares the source's blocks. Returns true when
// cloned; false when the file system cannot (auto falls back to copying);
// throws for --reflink=always.
bool try_clone(int in, int out, const std::string &src, const std::string &dst, const CopyOptions &opt,
               bool both_regular) {
  if (opt.reflink == ReflinkMode::Never || opt.mode != SparseMode::Auto) return false;
  int err = both_regular ? 0 : EINVAL;
  if (both_regular && ::ioctl(out, FICLONE, in) != 0) err = errno;
  if (err == 0) return true;
  if (opt.reflink == ReflinkMode::Always)
    throw CopyError("failed to clone " + quote(dst) + " from " + quote(src) + ": " + toolkit::errno_text(err));
  return false;
}

}  // namespace

Outcome copy_file(const std::string &src, const std::string &dst, const CopyOptions &opt, RunLog &log) {
  struct stat sst = stat_source(src);
  if (check_destination_path(src, sst, dst, log)) return Outcome::Duplicate;
  Fd in{::open(src.c_str(), O_RDONLY | O_CLOEXEC)};
  if (in.fd < 0) fail("cannot open", src, errno);
  if (::fstat(in.fd, &sst) != 0) fail("cannot stat", src, errno);
  struct stat dst_st;
  Fd out{open_destination(src, sst, dst, dst_st)};
  bool regular = S_ISREG(dst_st.st_mode);
  if (try_clone(in.fd, out.fd, src, dst, opt, regular && S_ISREG(sst.st_mode))) {
    if (opt.verbose)
      toolkit::write_stdout(quote(src) + " -> " + quote(dst) + ": " + std::to_string(sst.st_size) +
                            " bytes cloned (data: reflink)\n");
  } else {
    Sink sink(out.fd, dst, regular && opt.mode != SparseMode::Never, regular);
    bool seekable = ::lseek(in.fd, 0, SEEK_CUR) >= 0;
    // copy_file_range may clone on its own (btrfs, XFS, NFS): not with --reflink=never.
    bool offload = regular && opt.mode == SparseMode::Auto && S_ISREG(sst.st_mode) && opt.reflink != ReflinkMode::Never;
    Job job{Source{in.fd, src, seekable}, sink, opt.mode, hole_block(dst_st), offload};
    off_t size = final_size(in.fd, src, sst, copy_all(job, sst));
    sink.finish(size);
    if (opt.verbose) report(job, src, dst, size);
  }
  if (regular) log.add(FileId{dst_st.st_dev, dst_st.st_ino}, FileId{sst.st_dev, sst.st_ino});
  int fd = out.fd;
  out.fd = -1;
  if (::close(fd) != 0) fail("error closing", dst, errno);
  return Outcome::Copied;
}

}  // namespace sparsecp
