// range_copy.cc: see range_copy.h.
#include "range_copy.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "fd_io.h"

namespace sparsecp {

namespace {

constexpr size_t kBufSize = 256 * 1024;
constexpr size_t kOffloadChunk = size_t{1} << 30;  // stays far below 2 GiB

// Length of the piece of buf starting at file offset off that ends at the
// next multiple of block (or at the end of buf).
size_t piece_len(off_t off, size_t left, size_t block) {
  size_t to_boundary = block - static_cast<size_t>(off % static_cast<off_t>(block));
  return std::min(left, to_boundary);
}

// Hands n bytes read at off to the sink, turning zero pieces into holes.
void emit_with_holes(Sink &sink, const char *buf, size_t n, off_t off, size_t block) {
  size_t run = 0;  // bytes of data pending in buf[0, run)
  size_t i = 0;
  while (i < n) {
    size_t len = piece_len(off + static_cast<off_t>(i), n - i, block);
    if (all_zero(buf + i, len)) {
      sink.data(buf + i - run, run, off + static_cast<off_t>(i - run));
      sink.hole(off + static_cast<off_t>(i), static_cast<off_t>(len));
      run = 0;
    } else {
      run += len;
    }
    i += len;
  }
  sink.data(buf + n - run, run, off + static_cast<off_t>(n - run));
}

size_t want(off_t off, off_t end) {
  if (end < 0) return kBufSize;
  return static_cast<size_t>(std::min<off_t>(end - off, kBufSize));
}

}  // namespace

off_t copy_by_reading(const Source &src, Sink &sink, off_t off, off_t end, bool make_holes, size_t block) {
  std::unique_ptr<char[]> buf(new char[kBufSize]);
  while (end < 0 || off < end) {
    size_t n = read_some(src.fd, buf.get(), want(off, end), src.seekable ? off : -1, src.name);
    if (n == 0) break;  // end of file: the source was shorter than measured
    if (make_holes)
      emit_with_holes(sink, buf.get(), n, off, block);
    else
      sink.data(buf.get(), n, off);
    off += static_cast<off_t>(n);
  }
  return off;
}

off_t copy_by_offload(const Source &src, Sink &sink, off_t off, off_t end, bool &usable) {
  while (usable && off < end) {
    size_t len = static_cast<size_t>(std::min<off_t>(end - off, kOffloadChunk));
    loff_t in = off, out = off;
    ssize_t n = ::copy_file_range(src.fd, &in, sink.fd(), &out, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      usable = false;  // EXDEV, EINVAL, ENOSYS, EOPNOTSUPP, EPERM, ... or 0 (procfs)
      break;
    }
    sink.wrote(off, static_cast<size_t>(n));
    off += n;
  }
  return off;
}

}  // namespace sparsecp
