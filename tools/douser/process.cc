#include "process.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <new>

#include "common/std_streams.h"

namespace douser {
namespace {

// The limits raise_limits() lifts, with the floor each is raised to.
struct Limit {
  int resource;
  rlim_t floor;
  rlimit saved;
  bool have;
};
Limit g_limits[] = {
    {RLIMIT_NOFILE, 1024, {}, false},         {RLIMIT_AS, RLIM_INFINITY, {}, false},
    {RLIMIT_DATA, RLIM_INFINITY, {}, false},  {RLIMIT_CPU, RLIM_INFINITY, {}, false},
    {RLIMIT_FSIZE, RLIM_INFINITY, {}, false},
};

bool initial_user_namespace() {
  int fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;  // cannot tell: not proven
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  unsigned long inside = 1, outside = 1, count = 0;
  int used = 0;
  // Exactly one line, the identity map of every uid.
  if (std::sscanf(buf, " %lu %lu %lu %n", &inside, &outside, &count, &used) != 3) return false;
  return inside == 0 && outside == 0 && count == 4294967295UL && buf[used] == '\0';
}

}  // namespace

bool sanitize_fds() {
  if (!toolkit::ensure_std_fds()) return false;
  if (close_range(3, ~0U, 0) != 0) {
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 1 << 20) max = 1 << 20;
    for (long fd = 3; fd < max; ++fd) close(static_cast<int>(fd));
  }
  return true;
}

void raise_limits() {
  for (Limit &l : g_limits) {
    l.have = getrlimit(l.resource, &l.saved) == 0;
    if (!l.have) continue;
    rlimit want = l.saved;
    auto lift = [&](rlim_t &v) {
      if (v != RLIM_INFINITY && (l.floor == RLIM_INFINITY || v < l.floor)) v = l.floor;
    };
    lift(want.rlim_max);
    lift(want.rlim_cur);
    // Without privilege (not set-user-ID) the hard limit cannot rise: then
    // at least the soft one goes up to it.
    if (setrlimit(l.resource, &want) != 0) {
      want.rlim_max = l.saved.rlim_max;
      if (want.rlim_cur > want.rlim_max) want.rlim_cur = want.rlim_max;
      (void)setrlimit(l.resource, &want);
    }
  }
}

void restore_limits() {
  for (const Limit &l : g_limits)
    if (l.have) (void)setrlimit(l.resource, &l.saved);
}

const char *limits_too_low() {
  static char msg[200];
  rlimit l;
  if (getrlimit(RLIMIT_NOFILE, &l) == 0 && l.rlim_cur < kMinOpenFiles) {
    std::snprintf(msg, sizeof msg, "at least %lu open files are needed, and only %lu are allowed (ulimit -n)",
                  kMinOpenFiles, static_cast<unsigned long>(l.rlim_cur));
    return msg;
  }
  for (int resource : {RLIMIT_AS, RLIMIT_DATA}) {
    if (getrlimit(resource, &l) == 0 && l.rlim_cur != RLIM_INFINITY && l.rlim_cur / 1024 < kMinAddressSpaceKiB) {
      std::snprintf(msg, sizeof msg,
                    "at least %lu KiB of memory are needed to check a password, and only %lu KiB are "
                    "allowed (ulimit %s)",
                    kMinAddressSpaceKiB, static_cast<unsigned long>(l.rlim_cur / 1024),
                    resource == RLIMIT_AS ? "-v" : "-d");
      return msg;
    }
  }
  return nullptr;
}

void exit_when_out_of_memory() {
  std::set_new_handler([] {
    static const char msg[] = "douser: out of memory\n";
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    _exit(1);
  });
}

Privilege privilege() {
  if (geteuid() != 0) return Privilege::not_setuid;
  if (getauxval(AT_SECURE) != 0) return Privilege::setuid_root;
  if (getuid() == 0 && initial_user_namespace()) return Privilege::real_root;
  return Privilege::user_namespace;
}

}  // namespace douser
