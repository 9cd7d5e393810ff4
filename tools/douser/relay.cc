#include "relay.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace douser {
namespace {

// Bytes held in each direction; reads stop while a buffer is full, so a
// command that writes without end costs no more memory than this.
constexpr std::size_t kBufferSize = 16384;
// While no process has the pseudo-terminal open, the master reports a
// hang-up at once: it is then retried at this interval, not polled.
constexpr int kIdleRetryMs = 100;

bool write_all(int fd, const char *p, std::size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace

Relay::~Relay() {
  leave_raw();
  for (int fd : {sigfd_, master_, slave_})
    if (fd >= 0) close(fd);
}

bool Relay::prepare(uid_t owner, std::string &error) {
  sigset_t all;
  sigfillset(&all);
  sigfd_ = signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd_ < 0) {
    error = std::string("signalfd: ") + strerror(errno);
    return false;
  }
  for (int fd = 2; fd >= 0; --fd) {
    was_tty_[fd] = isatty(fd) == 1;
    if (was_tty_[fd]) caller_tty_ = fd;
  }
  if (caller_tty_ < 0) return true;
  master_ = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  char name[128];
  if (master_ < 0 || grantpt(master_) != 0 || unlockpt(master_) != 0 || ptsname_r(master_, name, sizeof name) != 0) {
    error = std::string("cannot open a new pseudo-terminal: ") + strerror(errno);
    return false;
  }
  pty_name_ = name;
  slave_ = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave_ < 0) {
    error = "cannot open " + pty_name_ + ": " + strerror(errno);
    return false;
  }
  // The command's terminal belongs to it, as a login's does.
  group *tty_group = getgrnam("tty");
  if (fchown(slave_, owner, tty_group ? tty_group->gr_gid : static_cast<gid_t>(-1)) != 0 || fchmod(slave_, 0620) != 0) {
    error = "cannot give " + pty_name_ + " to the user: " + strerror(errno);
    return false;
  }
  termios modes;
  if (tcgetattr(caller_tty_, &modes) == 0) tcsetattr(slave_, TCSANOW, &modes);
  copy_window_size();
  fcntl(master_, F_SETFL, fcntl(master_, F_GETFL) | O_NONBLOCK);
  return true;
}

std::string Relay::enter_child() {
  if (setsid() < 0) return std::string("setsid: ") + strerror(errno);
  if (master_ < 0) return "";
  if (ioctl(slave_, TIOCSCTTY, 0) != 0) return "cannot take " + pty_name_ + " as terminal: " + strerror(errno);
  for (int fd = 0; fd <= 2; ++fd)
    if (was_tty_[fd] && dup2(slave_, fd) < 0) return std::string("dup2: ") + strerror(errno);
  close(slave_);
  close(master_);
  close(sigfd_);
  slave_ = master_ = sigfd_ = -1;
  return "";
}

void Relay::copy_window_size() {
  winsize ws;
  if (master_ >= 0 && caller_tty_ >= 0 && ioctl(caller_tty_, TIOCGWINSZ, &ws) == 0) ioctl(master_, TIOCSWINSZ, &ws);
}

// Raw mode on the caller's terminal (fd 0), only while douser is in its
// foreground: every byte typed, Ctrl-C included, goes to the command's
// terminal, whose own line discipline (the caller's modes) acts on it.
bool Relay::enter_raw() {
  if (raw_ || master_ < 0 || !was_tty_[0] || tcgetpgrp(0) != getpgrp()) return raw_;
  if (tcgetattr(0, &saved_) != 0) return false;
  termios raw = saved_;
  raw.c_iflag &= ~static_cast<tcflag_t>(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
  raw.c_oflag &= ~static_cast<tcflag_t>(OPOST);
  raw.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  raw_ = tcsetattr(0, TCSANOW, &raw) == 0;
  return raw_;
}

void Relay::leave_raw() {
  if (!raw_) return;
  tcsetattr(0, TCSANOW, &saved_);
  raw_ = false;
}

Relay::Event Relay::on_signal(int sig, pid_t child, int &status) {
  if (sig == SIGWINCH) {
    copy_window_size();
    return Event::none;
  }
  if (sig == SIGCONT) return Event::none;  // douser itself was continued: nothing to pass on
  if (sig != SIGCHLD) {
    // Not yet reaped, so `child` cannot name another process.
    kill(child, sig);
    return Event::none;
  }
  int st;
  while (waitpid(child, &st, WNOHANG | WUNTRACED) == child) {
    if (!WIFSTOPPED(st)) {
      status = st;
      return Event::ended;
    }
    if (raw_) return Event::stopped;
  }
  return Event::none;
}

void Relay::flush_output() {
  while (output_ok_ && to_caller_.size() < 1024 * 1024) {
    char buf[4096];
    ssize_t r = read(master_, buf, sizeof buf);
    if (r <= 0) break;
    to_caller_.append(buf, static_cast<std::size_t>(r));
  }
  if (output_ok_ && !write_all(out_fd_, to_caller_.data(), to_caller_.size())) output_ok_ = false;
  to_caller_.clear();
}

int Relay::run(pid_t child) {
  if (slave_ >= 0) {
    close(slave_);  // the child has it; our copy would keep it from hanging up
    slave_ = -1;
  }
  for (int fd : {1, 2, 0})
    if (out_fd_ < 0 && master_ >= 0 && was_tty_[fd]) out_fd_ = fd;
  bool input_open = master_ >= 0 && was_tty_[0] && enter_raw();
  output_ok_ = out_fd_ >= 0;
  bool master_idle = false;
  std::string to_command;
  char buf[4096];
  bool done = false;
  int status = 0;
  while (!done) {
    pollfd p[4];
    int n = 0, i_sig = n++, i_master = -1, i_in = -1, i_out = -1;
    p[i_sig] = {sigfd_, POLLIN, 0};
    if (master_ >= 0 && !master_idle) {
      short ev = 0;
      if (to_caller_.size() < kBufferSize) ev |= POLLIN;
      if (!to_command.empty()) ev |= POLLOUT;
      i_master = n++;
      p[i_master] = {master_, ev, 0};
    }
    if (input_open && to_command.size() < kBufferSize) {
      i_in = n++;
      p[i_in] = {0, POLLIN, 0};
    }
    if (!to_caller_.empty()) {
      i_out = n++;
      p[i_out] = {out_fd_, POLLOUT, 0};
    }
    if (poll(p, static_cast<nfds_t>(n), master_idle ? kIdleRetryMs : -1) < 0) {
      if (errno == EINTR) continue;
      // Cannot happen with valid fds; never leave the command unwaited.
      while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    master_idle = false;
    signalfd_siginfo si;
    while (!done && read(sigfd_, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
      Event ev = on_signal(static_cast<int>(si.ssi_signo), child, status);
      done = ev == Event::ended;
      if (ev == Event::stopped) {
        // The command stopped (SIGSTOP, or its own SIGTSTP): show what it
        // wrote, give the caller's terminal back, stop with it, and
        // continue it when we are continued.
        flush_output();
        leave_raw();
        kill(getpid(), SIGSTOP);
        enter_raw();
        copy_window_size();
        kill(child, SIGCONT);
      }
    }
    if (done) break;
    if (i_master >= 0 && p[i_master].revents) {
      if (p[i_master].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t r = read(master_, buf, sizeof buf);
        if (r > 0) {
          if (output_ok_) to_caller_.append(buf, static_cast<std::size_t>(r));
        } else if (r == 0 || errno != EAGAIN) {
          master_idle = true;  // EIO: nobody has the terminal open right now
        }
      }
      if (p[i_master].revents & POLLOUT) {
        ssize_t w = write(master_, to_command.data(), to_command.size());
        if (w > 0) to_command.erase(0, static_cast<std::size_t>(w));
      }
    }
    if (i_in >= 0 && p[i_in].revents) {
      ssize_t r = read(0, buf, sizeof buf);
      if (r > 0) {
        to_command.append(buf, static_cast<std::size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        input_open = false;  // hang-up, or douser went to the background
      }
    }
    if (i_out >= 0 && p[i_out].revents) {
      if (!write_all(out_fd_, to_caller_.data(), to_caller_.size())) output_ok_ = false;
      to_caller_.clear();
    }
  }
  // Whatever the command wrote before it ended; a process it left behind
  // may write without end, so only what is there now (at most 1 MiB).
  if (master_ >= 0) {
    flush_output();
    leave_raw();
    close(master_);  // hangs up the pseudo-terminal for anything left on it
    master_ = -1;
  }
  return status;
}

}  // namespace douser
