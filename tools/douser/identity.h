// identity: becoming the target user, each step checked.
#pragma once

#include <string>

#include "environment.h"

namespace douser {

// In the child, before exec: supplementary groups (initgroups), then the
// gid (setresgid), then the uid (setresuid). After each step the result is
// read back (getgroups, getresgid, getresuid); for a non-root target, a
// setuid(0) must then fail. Returns an error message, or empty on success.
std::string become(const Target &t);

}  // namespace douser
