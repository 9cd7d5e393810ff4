// std_streams.cc: see std_streams.h.
#include "common/std_streams.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "common/diag.h"

namespace toolkit {

namespace {
bool g_write_error_reported = false;

bool report_write_error(int err) {
  if (!g_write_error_reported) warn("write error: " + errno_text(err));
  g_write_error_reported = true;
  return false;
}
}  // namespace

bool ensure_std_fds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    int n = ::open("/dev/null", (fd == 0 ? O_WRONLY : O_RDONLY) | O_NOCTTY);
    if (n != fd) {  // the lowest free descriptor is fd, unless open failed
      if (n >= 0) ::close(n);
      return false;
    }
  }
  return true;
}

bool write_stdout(std::string_view text) {
  errno = 0;
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
    return report_write_error(errno ? errno : EIO);
  return true;
}

bool flush_stdout() {
  if (g_write_error_reported) return false;
  errno = 0;
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) return report_write_error(errno ? errno : EIO);
  return true;
}

}  // namespace toolkit
