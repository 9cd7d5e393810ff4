// process: what douser makes sure of in its own process before it trusts
// anything the caller handed it (file descriptors, resource limits, the
// privilege it really has).
#pragma once

namespace douser {

// fds 0-2 made valid (toolkit::ensure_std_fds: /dev/null where closed, so
// our own opens never land there), every other inherited fd closed. False
// when fds 0-2 cannot be made valid: exit at once, writing nothing.
bool sanitize_fds();

// The caller's limits on open files, address space, data, CPU time and file
// size are saved and raised, so that douser cannot fail half-way (logging,
// PAM, the terminal) because of them; restore_limits() puts the caller's
// values back for the command, in the child before exec.
void raise_limits();
void restore_limits();

// Below these (limits that could not be raised: no CAP_SYS_RESOURCE, as in
// most containers) douser would fail half-way or, worse, give a wrong
// answer: a password hash (yescrypt) that cannot get its memory makes the
// right password look wrong. Measured on Debian 12: 10 files and about
// 25 MiB suffice; the floors leave room for longer PAM stacks and costlier
// hashes.
inline constexpr unsigned long kMinOpenFiles = 16;
inline constexpr unsigned long kMinAddressSpaceKiB = 64 * 1024;
// After raise_limits(): nullptr, or a message saying which limit is too
// low (static storage; nothing is allocated, as memory may be what is short).
const char *limits_too_low();

// Operator new that cannot get memory: a clear message and exit 1, instead
// of the C++ runtime's abort.
void exit_when_out_of_memory();

// What exec gave us:
//   setuid_root     the set-user-ID bit took effect (AT_SECURE);
//   real_root       started by root of the initial user namespace;
//   not_setuid      euid is not 0: the bit is missing or the mount is nosuid;
//   user_namespace  euid 0 without the bit taking effect, and not the
//                   initial namespace's root (e.g. `unshare --map-root-user`):
//                   uid 0 there is the caller in disguise.
enum class Privilege { setuid_root, real_root, not_setuid, user_namespace };
Privilege privilege();

}  // namespace douser
