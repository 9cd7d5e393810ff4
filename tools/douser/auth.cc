#include "auth.h"

#include <fcntl.h>
#include <poll.h>
#include <security/pam_appl.h>
#include <shadow.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace douser {
namespace {

constexpr std::size_t kMaxPassword = 1024;
constexpr long kFailDelayNs = 2'000'000'000L;

volatile sig_atomic_t g_prompt_signal = 0;
void on_prompt_signal(int sig) { g_prompt_signal = sig; }

struct ConvState {
  int tty = -1;
  bool interrupted = false;
  int signal = 0;  // what interrupted the prompt; 0 for end of input
  bool no_terminal = false;
  // Failure bookkeeping, shared with fail_delay (PAM hands it our appdata).
  int failures = 0;
  bool delay_ran = false;
  void (*on_failure)(void *, int) = nullptr;
  void *on_failure_ctx = nullptr;
};

// Signals that end the prompt: every one whose default action would
// terminate or stop douser (the others, SIGCHLD SIGCONT SIGURG SIGWINCH,
// are left alone; SIGKILL and SIGSTOP cannot be caught).
bool ends_prompt(int sig) {
  return sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD && sig != SIGCONT && sig != SIGURG && sig != SIGWINCH;
}

void tty_write(int fd, const char *s) {
  std::size_t len = std::strlen(s);
  while (len) {
    ssize_t n = write(fd, s, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    s += n;
    len -= static_cast<std::size_t>(n);
  }
}

// Reads one line from the terminal, echo off unless `echo`. Returns a
// malloc'ed string for PAM, or nullptr on EOF/interrupt/error.
char *read_line(ConvState &st, const char *prompt, bool echo) {
  termios saved{}, quiet{};
  bool have_termios = tcgetattr(st.tty, &saved) == 0;
  // In the background, changing echo or reading would only be refused (or
  // worse, allowed while SIGTTOU is blocked): say so instead.
  if (have_termios && tcgetpgrp(st.tty) != getpgrp()) {
    st.interrupted = true;
    st.signal = SIGTTIN;
    return nullptr;
  }
  // Ctrl-C, Ctrl-\, Ctrl-Z, hangups, SIGTERM and every other signal that
  // would end or stop us end the prompt instead of leaving echo switched off.
  // They stay blocked except inside ppoll(), so one that arrives before we
  // wait is not lost, and at most one handler runs (SA_RESETHAND: a fault
  // cannot loop through it).
  struct sigaction sa {};
  static struct sigaction old[NSIG];
  static bool caught[NSIG];
  sigset_t block, waitmask, oldmask;
  sigemptyset(&block);
  for (int s = 1; s < NSIG; ++s)
    if (ends_prompt(s)) sigaddset(&block, s);
  sigprocmask(SIG_BLOCK, &block, &oldmask);
  waitmask = oldmask;
  for (int s = 1; s < NSIG; ++s)
    if (ends_prompt(s)) sigdelset(&waitmask, s);
  sa.sa_handler = on_prompt_signal;
  sa.sa_flags = SA_RESETHAND;
  sigfillset(&sa.sa_mask);
  g_prompt_signal = 0;
  // Signals glibc keeps for itself (the first real-time ones) refuse a handler.
  for (int s = 1; s < NSIG; ++s) caught[s] = ends_prompt(s) && sigaction(s, &sa, &old[s]) == 0;
  // Echo goes off (and typeahead is discarded) before the prompt appears,
  // so nothing typed in answer to the prompt is ever echoed.
  if (have_termios && !echo) {
    quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL);
    tcsetattr(st.tty, TCSAFLUSH, &quiet);
  }
  tty_write(st.tty, prompt);
  char *buf = static_cast<char *>(std::calloc(kMaxPassword + 1, 1));
  std::size_t len = 0;
  bool ok = buf != nullptr;
  while (ok) {
    pollfd p{st.tty, POLLIN, 0};
    int r = ppoll(&p, 1, nullptr, &waitmask);
    if (r < 0 && errno == EINTR && !g_prompt_signal) continue;
    char c;
    ssize_t n = r > 0 ? read(st.tty, &c, 1) : -1;
    if (n < 0 && errno == EINTR && !g_prompt_signal) continue;
    if (n <= 0 || g_prompt_signal) {
      ok = false;
      st.interrupted = true;
      st.signal = g_prompt_signal;
      break;
    }
    if (c == '\n' || c == '\r') break;
    if (len < kMaxPassword) buf[len++] = c;  // longer input is cut, never overflows
  }
  if (have_termios && !echo) tcsetattr(st.tty, TCSANOW, &saved);
  for (int s = 1; s < NSIG; ++s)
    if (caught[s]) sigaction(s, &old[s], nullptr);
  // A signal that arrived after the last wait still ends the prompt.
  timespec zero{0, 0};
  for (int s; (s = sigtimedwait(&block, nullptr, &zero)) > 0;) {
    if (ok) {
      ok = false;
      st.interrupted = true;
      st.signal = s;
    }
  }
  sigprocmask(SIG_SETMASK, &oldmask, nullptr);
  if (!echo) tty_write(st.tty, "\n");
  if (!ok && buf) {
    explicit_bzero(buf, kMaxPassword + 1);
    std::free(buf);
    buf = nullptr;
  }
  return buf;
}

int conversation(int n, const pam_message **msgs, pam_response **resp, void *data) {
  auto &st = *static_cast<ConvState *>(data);
  if (n <= 0 || n > PAM_MAX_NUM_MSG) return PAM_CONV_ERR;
  auto *out = static_cast<pam_response *>(std::calloc(static_cast<std::size_t>(n), sizeof(pam_response)));
  if (!out) return PAM_BUF_ERR;
  for (int i = 0; i < n; ++i) {
    const pam_message *m = msgs[i];
    switch (m->msg_style) {
      case PAM_PROMPT_ECHO_OFF:
      case PAM_PROMPT_ECHO_ON:
        if (st.tty < 0) {
          st.no_terminal = true;
          goto fail;
        }
        out[i].resp = read_line(st, m->msg, m->msg_style == PAM_PROMPT_ECHO_ON);
        if (!out[i].resp) goto fail;
        break;
      case PAM_ERROR_MSG:
      case PAM_TEXT_INFO:
        if (st.tty >= 0) {
          tty_write(st.tty, m->msg);
          tty_write(st.tty, "\n");
        }
        break;
      default:
        goto fail;
    }
  }
  *resp = out;
  return PAM_SUCCESS;
fail:
  for (int i = 0; i < n; ++i)
    if (out[i].resp) {
      explicit_bzero(out[i].resp, std::strlen(out[i].resp));
      std::free(out[i].resp);
    }
  std::free(out);
  return PAM_CONV_ERR;
}

bool wrong_password(int pam_status) {
  // pam_unix answers PAM_MAXTRIES instead of PAM_AUTH_ERR once it has
  // counted its own retry limit on this handle: still a wrong password.
  return pam_status == PAM_AUTH_ERR || pam_status == PAM_USER_UNKNOWN || pam_status == PAM_CRED_INSUFFICIENT ||
         pam_status == PAM_MAXTRIES;
}

void sleep_after_failure() {
  timespec ts{kFailDelayNs / 1'000'000'000L, kFailDelayNs % 1'000'000'000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

// A wrong password: counted and reported (logged) first, then the delay,
// so a caller who kills douser during the delay is logged all the same.
void record_failure(ConvState &st) {
  ++st.failures;
  if (st.on_failure) st.on_failure(st.on_failure_ctx, st.failures);
  sleep_after_failure();
}

// Our PAM_FAIL_DELAY: exactly 2 s after a failed try, whatever the modules
// asked for, and none at all after an interrupted prompt (exit at once).
// PAM passes the conversation's appdata, our ConvState.
void fail_delay(int retval, unsigned, void *appdata) {
  auto *st = static_cast<ConvState *>(appdata);
  if (retval == PAM_SUCCESS || st == nullptr) return;
  st->delay_ran = true;
  if (st->interrupted || st->no_terminal) return;
  if (wrong_password(retval)) {
    record_failure(*st);
  } else {
    sleep_after_failure();
  }
}

}  // namespace

PasswordState classify_hash(const std::string &hash) {
  if (hash.empty()) return PasswordState::empty;
  if (hash[0] == '!' || hash[0] == '*') return PasswordState::locked;
  return PasswordState::usable;
}

PasswordState password_state(const std::string &user) {
  errno = 0;
  spwd *sp = getspnam(user.c_str());
  if (!sp) return PasswordState::no_shadow_entry;
  return classify_hash(sp->sp_pwdp ? sp->sp_pwdp : "");
}

struct PamSession::Impl {
  pam_handle_t *pamh = nullptr;
  ConvState conv_state;
  pam_conv conv{conversation, &conv_state};
  int last = PAM_SUCCESS;
  bool cred = false, session = false;
};

PamSession::PamSession(const std::string &target, const std::string &caller, const std::string &tty) : impl_(new Impl) {
  impl_->conv_state.tty = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  impl_->last = pam_start("douser", target.c_str(), &impl_->conv, &impl_->pamh);
  if (impl_->last == PAM_SUCCESS) {
    pam_set_item(impl_->pamh, PAM_RUSER, caller.c_str());
    if (!tty.empty()) pam_set_item(impl_->pamh, PAM_TTY, tty.c_str());
    pam_set_item(impl_->pamh, PAM_FAIL_DELAY, reinterpret_cast<const void *>(&fail_delay));
  }
}

PamSession::~PamSession() {
  close();
  if (impl_->pamh) pam_end(impl_->pamh, impl_->last);
  if (impl_->conv_state.tty >= 0) ::close(impl_->conv_state.tty);
  delete impl_;
}

AuthOutcome PamSession::authenticate_impl(int tries, void (*cb)(void *, int), void *ctx) {
  if (!impl_->pamh) return {AuthResult::error, 0, "pam_start failed"};
  ConvState &st = impl_->conv_state;
  if (st.tty < 0) return {AuthResult::no_terminal, 0, "no terminal"};
  st.on_failure = cb;
  st.on_failure_ctx = ctx;
  for (int t = 0; t < tries; ++t) {
    st.delay_ran = false;
    impl_->last = pam_authenticate(impl_->pamh, PAM_DISALLOW_NULL_AUTHTOK);
    if (impl_->last == PAM_SUCCESS) break;
    if (st.interrupted) return {AuthResult::interrupted, st.failures, "prompt interrupted", st.signal};
    if (st.no_terminal) return {AuthResult::no_terminal, st.failures, "no terminal"};
    if (!wrong_password(impl_->last)) return {AuthResult::error, st.failures, pam_strerror(impl_->pamh, impl_->last)};
    // A libpam that did not call our delay function: log and wait here.
    if (!st.delay_ran) record_failure(st);
    if (impl_->last == PAM_MAXTRIES) break;
  }
  if (impl_->last != PAM_SUCCESS) return {AuthResult::failed, st.failures, pam_strerror(impl_->pamh, impl_->last)};
  impl_->last = pam_acct_mgmt(impl_->pamh, PAM_DISALLOW_NULL_AUTHTOK);
  if (impl_->last == PAM_NEW_AUTHTOK_REQD || impl_->last == PAM_ACCT_EXPIRED)
    return {AuthResult::expired, st.failures, pam_strerror(impl_->pamh, impl_->last)};
  if (impl_->last != PAM_SUCCESS) return {AuthResult::failed, st.failures, pam_strerror(impl_->pamh, impl_->last)};
  return {AuthResult::ok, st.failures, ""};
}

std::string PamSession::user() const {
  const void *item = nullptr;
  if (!impl_->pamh || pam_get_item(impl_->pamh, PAM_USER, &item) != PAM_SUCCESS || item == nullptr) return "";
  return static_cast<const char *>(item);
}

bool PamSession::open(std::string &error) {
  if (!impl_->pamh) {
    error = "pam_start failed";
    return false;
  }
  impl_->last = pam_setcred(impl_->pamh, PAM_ESTABLISH_CRED);
  if (impl_->last != PAM_SUCCESS) {
    error = std::string("pam_setcred: ") + pam_strerror(impl_->pamh, impl_->last);
    return false;
  }
  impl_->cred = true;
  impl_->last = pam_open_session(impl_->pamh, 0);
  if (impl_->last != PAM_SUCCESS) {
    error = std::string("pam_open_session: ") + pam_strerror(impl_->pamh, impl_->last);
    return false;
  }
  impl_->session = true;
  return true;
}

void PamSession::close() {
  if (!impl_->pamh) return;
  if (impl_->session) pam_close_session(impl_->pamh, 0);
  if (impl_->cred) pam_setcred(impl_->pamh, PAM_DELETE_CRED);
  impl_->session = impl_->cred = false;
}

}  // namespace douser
