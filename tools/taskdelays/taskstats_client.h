// taskstats_client: the TASKSTATS generic-netlink family, spoken through
// libnl-genl-3. One object owns one netlink socket.
//
// Requests (TASKSTATS_CMD_GET) keep libnl's sequence checking; listen mode
// disables it because exit records carry per-CPU sequence numbers. Every
// receive is bounded by poll() with a timeout, so a container whose netlink
// never answers gives an error instead of a hang.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

#include "taskstats_layout.h"

struct nl_sock;

namespace taskdelays {

enum class ErrorKind {
  no_taskstats,    // family TASKSTATS not registered (CONFIG_TASKSTATS=n)
  permission,      // -EPERM: needs CAP_NET_ADMIN
  no_such_process, // -ESRCH
  invalid,         // -EINVAL (e.g. listen registration outside the initial namespaces)
  timeout,         // no reply within the timeout
  interrupted,     // a signal arrived while waiting (listen mode)
  netlink,         // any other libnl or socket failure
  protocol,        // a reply we could not decode
};

struct TaskstatsError : std::runtime_error {
  TaskstatsError(ErrorKind k, int err, const std::string& what)
      : std::runtime_error(what), kind(k), code(err) {}
  ErrorKind kind;
  int code;  // positive errno, or libnl error code for ErrorKind::netlink
};

// One decoded statistics record and what it is about.
struct TaskRecord {
  bool is_group = false;  // came in TASKSTATS_TYPE_AGGR_TGID
  uint32_t id = 0;        // pid or tgid
  Record stats;
};

class TaskstatsClient {
 public:
  explicit TaskstatsClient(int timeout_ms);  // connects and resolves the family; throws
  ~TaskstatsClient();
  TaskstatsClient(const TaskstatsClient&) = delete;
  TaskstatsClient& operator=(const TaskstatsClient&) = delete;

  // TASKSTATS_CMD_GET for one thread (group=false) or thread group.
  TaskRecord get(uint32_t id, bool group);

  // Listen mode: registers for exit records of tasks on `cpumask`.
  void register_cpumask(const std::string& cpumask, int rcvbuf);
  void deregister_cpumask(const std::string& cpumask);
  // Waits up to `wait_ms` (-1: forever) for exit records and hands each to
  // `sink`. Returns the number of records lost to receive-buffer overruns
  // in this call. Throws TaskstatsError(interrupted) when poll is
  // interrupted by a signal.
  long receive_exits(const std::function<void(const TaskRecord&)>& sink, int wait_ms);

 private:
  void send_request(int attr, const void* data, std::size_t len, bool want_ack);

  nl_sock* sock_ = nullptr;
  int family_ = 0;
  int timeout_ms_;
};

// "permission denied: TASKSTATS requires root or CAP_NET_ADMIN" and so on.
std::string describe(const TaskstatsError& e);

// Waits until `fd` is readable. Throws TaskstatsError with kind timeout
// ("timed out after 5.0 s waiting for the kernel's taskstats reply") or
// interrupted. `wait_ms` < 0 waits forever.
void wait_for_reply(int fd, int wait_ms);

}  // namespace taskdelays
