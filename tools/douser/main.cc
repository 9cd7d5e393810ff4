// douser: run a command as another user after authenticating as that user
// (su model: the target's password, root by default). Set-user-ID root.
// See README.md and --help.
//
// Order of work, each step before anything that depends on it:
//   1. fds 0-2 made valid, every inherited fd above 2 closed;
//   2. the caller's environment captured and cleared (PAM and the command
//      never see it; the command gets a fresh allow-listed one);
//   3. options, set-user-ID check, target lookup, shadow checks;
//   4. PAM: up to 3 password prompts on /dev/tty, 2 s after each failure,
//      account check, credentials and session;
//   5. fork: the child drops to the target (groups, gid, uid, each read
//      back), starts a new session if the terminal accepts TIOCSTI, and
//      execs; the parent relays signals, closes the PAM session and passes
//      the exit status back.
// Every outcome goes to syslog (LOG_AUTH).
#include <fcntl.h>
#include <linux/close_range.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "audit.h"
#include "auth.h"
#include "environment.h"
#include "identity.h"
#include "options.h"

extern char** environ;

using namespace douser;

namespace {

constexpr const char* kHelp = R"(NAME
    douser - run a command as another user, after that user's password

SYNOPSIS
    douser [-u USER] [--] COMMAND [ARG...]

DESCRIPTION
    douser asks for the password of USER (root when -u is not given) on the
    terminal, checks it through PAM (service "douser", /etc/pam.d/douser),
    and runs COMMAND as USER: with USER's supplementary groups, group and
    user ids (each change is verified), in a clean environment, with every
    inherited file descriptor above 2 closed. A caller that is already root
    is not asked for a password.

    COMMAND is looked up in the safe PATH below, never in the caller's.

    douser must be installed set-user-ID root (owner root, mode 4755).

ENVIRONMENT OF THE COMMAND
    Only TERM, COLORTERM, LANG, LANGUAGE, LC_* and TZ pass from the caller,
    and only with harmless values. Set by douser:
        HOME, SHELL     from USER's passwd entry
        USER, LOGNAME   USER
        PATH            /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        DOUSER_USER, DOUSER_UID
                        the caller's name and uid
    Everything else (LD_PRELOAD, IFS, PATH, BASH_ENV, ...) is dropped.

TERMINAL
    When this kernel lets a process push keystrokes into its terminal
    (TIOCSTI; dev.tty.legacy_tiocsti=1 or a kernel before 6.2) and the
    command would share the caller's terminal, the command runs in a new
    session without a controlling terminal, so it cannot type into the
    caller's shell. Its standard input and output stay connected.

REFUSALS
    unknown user; wrong password (three tries, 2 s delay after each);
    a locked or empty password, unless the caller is root; an expired
    account; no terminal to ask the password on; douser not installed
    set-user-ID root; no command. Every attempt, granted or refused, is
    logged to syslog with facility auth.

OPTIONS
    -u USER, --user USER   the user to become (default root)
    -h, --help             show this help
    --version              show the version

EXIT STATUS
    The command's exit status, or 128+N if it was killed by signal N.
    1   refused (authentication, unknown user, locked account, ...)
    2   usage error (no command, unknown option)
    126 COMMAND is not executable; 127 COMMAND not found

FILES
    /etc/pam.d/douser      PAM configuration (installed with douser)
)";

void err(const std::string& s) {
  std::string line = "douser: " + s + "\n";
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

// fds 0-2 must exist (else our own opens would land there and error text
// could end up in a file), and nothing else may leak in.
void sanitize_fds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      int n = open("/dev/null", O_RDWR);
      if (n != fd) _exit(1);  // cannot make a safe stdio
    }
  }
  if (close_range(3, ~0U, 0) != 0) {
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 1 << 20) max = 1 << 20;
    for (long fd = 3; fd < max; ++fd) close(static_cast<int>(fd));
  }
}

bool tiocsti_possible() {
  std::ifstream f("/proc/sys/dev/tty/legacy_tiocsti");
  int v = 1;  // missing file: kernel before 6.2, TIOCSTI always allowed
  if (f >> v) return v != 0;
  return true;
}

// True when the command could reach a terminal: one of fds 0-2 is a tty,
// or we have a controlling terminal (the command could open /dev/tty).
bool terminal_reachable() {
  for (int fd = 0; fd <= 2; ++fd)
    if (isatty(fd)) return true;
  int fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return false;
  close(fd);
  return true;
}

std::string tty_of_caller() {
  for (int fd = 0; fd <= 2; ++fd)
    if (isatty(fd)) {
      const char* n = ttyname(fd);
      return n ? n : "?";
    }
  return "";
}

std::string current_dir() {
  char buf[PATH_MAX];
  return getcwd(buf, sizeof buf) ? std::string(buf) : std::string("?");
}

struct Caller {
  uid_t uid;
  std::string name;
  std::string tty;
  std::string cwd;
};

int refuse(const Caller& c, const std::string& target, const std::string& why, int status = 1) {
  audit_refused("refused: " + log_escape(c.name) + " as " + log_escape(target) + " on " +
                (c.tty.empty() ? std::string("no tty") : log_escape(c.tty)) + ": " + why);
  return status;
}

int status_of(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return 1;
}

// Message from the child on the cloexec pipe: 'I' + text (identity change
// failed) or 'E' + errno (exec failed).
struct ChildReport {
  char kind = 0;
  int err = 0;
  char text[240] = {};
};

int run(const Options& o, const Caller& c, const Target& t, const std::vector<std::string>& caller_env) {
  PamSession pam(t.name, c.name, c.tty);
  if (c.uid != 0) {
    PasswordState ps = password_state(t.name);
    if (ps == PasswordState::empty) {
      err("the account '" + t.name + "' has an empty password; only root may run commands as it");
      return refuse(c, t.name, "empty password");
    }
    if (ps == PasswordState::locked) {
      err("the account '" + t.name + "' is locked (no password login); only root may run commands as it");
      return refuse(c, t.name, "locked account");
    }
    AuthOutcome a = pam.authenticate(3, [&](int n) {
      err("Authentication failure");
      audit_refused("authentication failure: " + log_escape(c.name) + " as " + log_escape(t.name) + " on " +
                    log_escape(c.tty) + " (try " + std::to_string(n) + " of 3)");
    });
    switch (a.result) {
      case AuthResult::ok: break;
      case AuthResult::failed:
        err(a.failures ? std::to_string(a.failures) + " incorrect password attempts" : "Authentication failure");
        return refuse(c, t.name, std::to_string(a.failures) + " incorrect password(s)");
      case AuthResult::no_terminal:
        err("a terminal is required to read the password");
        return refuse(c, t.name, "no terminal");
      case AuthResult::interrupted:
        err("password prompt interrupted");
        return refuse(c, t.name, "prompt interrupted");
      case AuthResult::expired:
        err("the account or password of '" + t.name + "' has expired");
        return refuse(c, t.name, "expired: " + a.detail);
      case AuthResult::error:
        err("authentication error: " + a.detail);
        return refuse(c, t.name, "PAM error: " + a.detail);
    }
  }
  std::string pam_error;
  if (!pam.open(pam_error)) {
    err(pam_error);
    return refuse(c, t.name, pam_error);
  }

  bool new_session = tiocsti_possible() && terminal_reachable();
  audit_granted(log_escape(c.name) + " ran '" + log_command(o.command) + "' as " + log_escape(t.name) + " (uid " +
                std::to_string(t.uid) + ") on " + (c.tty.empty() ? std::string("no tty") : log_escape(c.tty)) +
                " in " + log_escape(c.cwd) + (new_session ? "; new session" : ""));

  std::vector<std::string> env = build_environment(caller_env, t, c.name, c.uid);
  std::vector<char*> envp, argv;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  for (const auto& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  sigset_t relay, old;
  sigemptyset(&relay);
  for (int s : {SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD}) sigaddset(&relay, s);
  sigprocmask(SIG_BLOCK, &relay, &old);
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    err(std::string("pipe: ") + strerror(errno));
    return 1;
  }
  pid_t child = fork();
  if (child < 0) {
    err(std::string("fork: ") + strerror(errno));
    return 1;
  }
  if (child == 0) {
    close(pipefd[0]);
    ChildReport r;
    for (int s = 1; s < NSIG; ++s)
      if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    std::string e = become(t);
    if (!e.empty()) {
      r.kind = 'I';
      std::snprintf(r.text, sizeof r.text, "%s", e.c_str());
      (void)!write(pipefd[1], &r, sizeof r);
      _exit(1);
    }
    if (new_session) setsid();
    if (access(".", X_OK) != 0 && chdir(t.home.c_str()) != 0) (void)!chdir("/");
    // Whatever PAM modules or libraries left open must not reach the command.
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    environ = envp.data();
    execvp(argv[0], argv.data());
    r.kind = 'E';
    r.err = errno;
    (void)!write(pipefd[1], &r, sizeof r);
    _exit(r.err == ENOENT ? 127 : 126);
  }
  close(pipefd[1]);
  int wstatus = 0;
  while (true) {
    siginfo_t si;
    int s = sigwaitinfo(&relay, &si);
    if (s < 0) continue;
    if (s == SIGCHLD) {
      if (waitpid(child, &wstatus, WNOHANG) == child) break;
      continue;
    }
    // In a new session the terminal's signals no longer reach the command:
    // relay everything. Otherwise relay only what was sent to us directly.
    if (new_session || si.si_code != SI_KERNEL) kill(child, s);
  }
  child = 0;  // reaped: never signal that pid again
  ChildReport r;
  ssize_t n = read(pipefd[0], &r, sizeof r);
  close(pipefd[0]);
  pam.close();
  sigprocmask(SIG_SETMASK, &old, nullptr);
  if (n == static_cast<ssize_t>(sizeof r)) {
    if (r.kind == 'I') {
      err(std::string("cannot become ") + t.name + ": " + r.text);
      audit_refused("identity change failed for " + log_escape(t.name) + ": " + log_escape(r.text));
      return 1;
    }
    err(o.command[0] + ": " + (r.err == ENOENT ? "command not found" : strerror(r.err)));
    return r.err == ENOENT ? 127 : 126;
  }
  return status_of(wstatus);
}

}  // namespace

int main(int argc, char** argv) {
  sanitize_fds();
  if (argc < 1 || argv[0] == nullptr) {
    err("invalid invocation (empty argument list)");
    return 1;
  }
  prctl(PR_SET_DUMPABLE, 0);
  std::vector<std::string> caller_env;
  for (char** e = environ; e && *e; ++e) caller_env.emplace_back(*e);
  clearenv();
  setenv("PATH", kSecurePath, 1);
  audit_open();

  Caller c;
  c.uid = getuid();
  if (passwd* pw = getpwuid(c.uid)) c.name = pw->pw_name;
  else c.name = "#" + std::to_string(c.uid);
  c.tty = tty_of_caller();
  c.cwd = current_dir();

  Options o;
  try {
    o = parse_options(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const UsageError& e) {
    err(e.what());
    std::cerr << "usage: douser [-u USER] [--] COMMAND [ARG...]   (douser --help)\n";
    return refuse(c, "?", std::string("usage error: ") + e.what(), 2);
  }
  if (o.help) {
    std::cout << kHelp;
    return 0;
  }
  if (o.version) {
    std::cout << "douser 0.1.0\n";
    return 0;
  }
  if (geteuid() != 0) {
    err("not installed set-user-ID root, so it cannot switch users (as root: chown root douser && "
        "chmod 4755 douser; and the file system must not be mounted nosuid)");
    return refuse(c, o.user, "not set-user-ID root");
  }
  passwd* pw = plausible_user_name(o.user) ? getpwnam(o.user.c_str()) : nullptr;
  if (!pw || pw->pw_uid == static_cast<uid_t>(-1) || pw->pw_gid == static_cast<gid_t>(-1)) {
    err("unknown user '" + log_escape(o.user, 64) + "'");
    return refuse(c, o.user, "unknown user");
  }
  Target t;
  t.name = pw->pw_name;
  t.uid = pw->pw_uid;
  t.gid = pw->pw_gid;
  t.home = pw->pw_dir ? pw->pw_dir : "/";
  t.shell = pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh";
  return run(o, c, t, caller_env);
}
