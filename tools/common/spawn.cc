// spawn.cc: see spawn.h.
#include "common/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <utility>

#include "common/diag.h"

namespace toolkit {

namespace {

// What the child writes on the report pipe: one write, below PIPE_BUF, so
// the parent reads all of it or nothing.
struct Report {
  char stage;  // 'S' setup failed, 'E' exec failed
  int err;
  char text[240];
};

void send_report(int fd, char stage, int err, const std::string &text) {
  Report r{};
  r.stage = stage;
  r.err = err;
  std::snprintf(r.text, sizeof r.text, "%s", text.c_str());
  ssize_t n;
  do n = ::write(fd, &r, sizeof r);
  while (n < 0 && errno == EINTR);
}

void reset_signal_state() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s)
    if (s != SIGKILL && s != SIGSTOP) ::sigaction(s, &dfl, nullptr);  // EINVAL for glibc's own: fine
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

[[noreturn]] void run_child(char *const *argv, const SpawnOptions &o, int report_fd) {
  if (o.setup) {
    std::string why = o.setup();
    if (!why.empty()) {
      send_report(report_fd, 'S', 0, why);
      ::_exit(1);
    }
  }
  if (o.reset_signals) reset_signal_state();
  if (o.envp && o.search_path)
    ::execvpe(argv[0], argv, o.envp);
  else if (o.envp)
    ::execve(argv[0], argv, o.envp);
  else if (o.search_path)
    ::execvp(argv[0], argv);
  else
    ::execv(argv[0], argv);
  int err = errno;
  send_report(report_fd, 'E', err, "");
  ::_exit(exec_failure_status(err));
}

}  // namespace

int exec_failure_status(int err) { return err == ENOENT || err == ENOTDIR ? kExitNotFound : kExitCannotExec; }

std::string exec_failure_text(int err) { return err == ENOENT ? "command not found" : errno_text(err); }

int exit_status_of(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

Child::Child(Child &&other) noexcept : pid_(other.pid_), report_fd_(std::exchange(other.report_fd_, -1)) {}

Child::~Child() {
  if (report_fd_ >= 0) ::close(report_fd_);
}

ExecResult Child::wait_exec() {
  ExecResult result;
  if (report_fd_ < 0) return result;
  Report r{};
  ssize_t n;
  do n = ::read(report_fd_, &r, sizeof r);
  while (n < 0 && errno == EINTR);
  ::close(report_fd_);
  report_fd_ = -1;
  if (n != static_cast<ssize_t>(sizeof r)) return result;  // closed by exec: started
  r.text[sizeof r.text - 1] = '\0';
  if (r.stage == 'S') {
    result.stage = ExecResult::Stage::setup_failed;
    result.text = r.text;
  } else {
    result.stage = ExecResult::Stage::exec_failed;
    result.err = r.err;
  }
  return result;
}

Child spawn(const std::vector<std::string> &argv, const SpawnOptions &options) {
  std::vector<char *> args;
  args.reserve(argv.size() + 1);
  for (const std::string &a : argv) args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::system_error(err, std::generic_category(), "fork");
  }
  if (pid == 0) {
    ::close(fds[0]);
    run_child(args.data(), options, fds[1]);
  }
  ::close(fds[1]);
  return Child(pid, fds[0]);
}

std::string describe(const ExecResult &result, const std::string &command) {
  std::string q = quote(command, 200);
  std::string name = q.size() == command.size() + 2 ? command : q;  // quoted only if something was escaped
  switch (result.stage) {
    case ExecResult::Stage::started:
      return "";
    case ExecResult::Stage::setup_failed:
      return name + ": " + result.text;
    case ExecResult::Stage::exec_failed:
      return name + ": " + exec_failure_text(result.err);
  }
  return "";
}

int exit_status_of(const ExecResult &result) {
  return result.stage == ExecResult::Stage::exec_failed ? exec_failure_status(result.err) : 1;
}

}  // namespace toolkit
