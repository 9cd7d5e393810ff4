// auth: asks for the target user's password on the terminal, through PAM.
//
// The password is read from /dev/tty (never from stdin) with echo off;
// termios is restored on every path. Every signal whose default action would
// end or stop douser ends the prompt at once instead (the caller learns which
// one in AuthOutcome::signal). Each failed try is logged first and then
// followed by a fixed 2 s delay (our own PAM_FAIL_DELAY function, so the
// delay does not depend on the modules); an interrupted prompt has no delay.
#pragma once

#include <string>

namespace douser {

// What the shadow entry says about password logins.
enum class PasswordState { usable, empty, locked, no_shadow_entry };
PasswordState password_state(const std::string &user);
// Classifies a crypt(3) hash field: "" -> empty, "!..." or "*..." -> locked.
PasswordState classify_hash(const std::string &hash);

enum class AuthResult { ok, failed, no_terminal, interrupted, expired, error };

struct AuthOutcome {
  AuthResult result;
  int failures;        // wrong passwords entered
  std::string detail;  // PAM error text for logs
  int signal = 0;      // interrupted: the signal that ended the prompt (0: end of input)
};

class PamSession {
 public:
  // Starts the "douser" PAM service for `target`.
  PamSession(const std::string &target, const std::string &caller, const std::string &tty);
  ~PamSession();
  PamSession(const PamSession &) = delete;
  PamSession &operator=(const PamSession &) = delete;

  // Up to `tries` password prompts, then the account check.
  // `on_failure(n)` is called after the n-th wrong password, before the
  // failure delay (so the attempt is logged even if douser is then killed).
  template <class F>
  AuthOutcome authenticate(int tries, F on_failure) {
    return authenticate_impl(
        tries, +[](void *f, int n) { (*static_cast<F *>(f))(n); }, &on_failure);
  }
  // PAM_USER as the modules left it: authentication may change the user.
  std::string user() const;
  // Credentials and session (pam_setcred, pam_open_session); close undoes them.
  bool open(std::string &error);
  void close();

 private:
  AuthOutcome authenticate_impl(int tries, void (*cb)(void *, int), void *ctx);
  struct Impl;
  Impl *impl_;
};

}  // namespace douser
