// output.cc: see output.h.
#include "output.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

#include "common/diag.h"
#include "common/std_streams.h"

namespace taskdelays {

namespace {

std::string failure(const std::string &what, const std::string &path, int err, const char *tail = "") {
  return what + " " + toolkit::quote(path) + tail + ": " + toolkit::errno_text(err);
}

// Writes all of TEXT to FD; returns 0 or the errno.
int write_all(int fd, const std::string &text) {
  const char *p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return EIO;
    p += n;
    left -= static_cast<size_t>(n);
  }
  return 0;
}

void write_in_place(const std::string &path, const std::string &text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0666);
  if (fd < 0) throw std::runtime_error(failure("cannot open", path, errno, " for writing"));
  int err = write_all(fd, text);
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err) throw std::runtime_error(failure("error writing", path, err));
}

// Every signal that could end the process held back for the lifetime of
// the object (SIGKILL and SIGSTOP cannot be).
class SignalsHeld {
 public:
  SignalsHeld() {
    sigset_t all;
    sigfillset(&all);
    ::sigprocmask(SIG_BLOCK, &all, &old_);
  }
  ~SignalsHeld() { ::sigprocmask(SIG_SETMASK, &old_, nullptr); }

 private:
  sigset_t old_;
};

}  // namespace

void replace_file(const std::string &path, const std::string &text) {
  struct stat st;
  bool exists = ::lstat(path.c_str(), &st) == 0;
  if (!exists && errno != ENOENT) throw std::runtime_error(failure("cannot open", path, errno, " for writing"));
  if (exists && (!S_ISREG(st.st_mode) || st.st_nlink > 1)) return write_in_place(path, text);

  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  std::string temp = dir + "/.taskdelays.XXXXXX";
  mode_t mode;
  if (exists) {
    mode = st.st_mode & 07777;
  } else {
    mode_t mask = ::umask(0);
    ::umask(mask);
    mode = 0666 & ~mask;
  }
  SignalsHeld held;
  int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(failure("cannot open", path, errno, " for writing"));
  int err = 0;
  if (exists && ::geteuid() == 0) (void)!::fchown(fd, st.st_uid, st.st_gid);
  if (::fchmod(fd, mode) != 0) err = errno;
  if (!err) err = write_all(fd, text);
  if (!err && ::fdatasync(fd) != 0) err = errno;
  if (::close(fd) != 0 && !err) err = errno;
  if (err) {
    ::unlink(temp.c_str());
    throw std::runtime_error(failure("error writing", path, err));
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    err = errno;
    ::unlink(temp.c_str());
    throw std::runtime_error(failure("cannot replace", path, err));
  }
}

StreamOutput::~StreamOutput() {
  if (fd_ >= 0) ::close(fd_);
}

void StreamOutput::write(const std::string &text) {
  if (path_.empty()) {
    if (!toolkit::write_stdout(text)) throw ReportNotWritten();
    return;
  }
  if (fd_ < 0) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0666);
    if (fd_ < 0) throw std::runtime_error(failure("cannot open", path_, errno, " for writing"));
  }
  if (int err = write_all(fd_, text)) throw std::runtime_error(failure("error writing", path_, err));
}

void deliver(const std::string &path, const std::string &text) {
  if (path.empty()) {
    if (!toolkit::write_stdout(text)) throw ReportNotWritten();
    return;
  }
  replace_file(path, text);
}

}  // namespace taskdelays
