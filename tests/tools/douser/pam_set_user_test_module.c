/* A PAM module for douser's tests only: its auth step succeeds and sets
 * PAM_USER to the name given as "user=NAME", as a module that maps login
 * names may do. douser must then run the command as NAME, looked up again. */
#include <security/pam_modules.h>
#include <string.h>

int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
  (void)flags;
  for (int i = 0; i < argc; ++i)
    if (strncmp(argv[i], "user=", 5) == 0) return pam_set_item(pamh, PAM_USER, argv[i] + 5);
  return PAM_AUTH_ERR;
}

int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) {
  (void)pamh, (void)flags, (void)argc, (void)argv;
  return PAM_SUCCESS;
}
