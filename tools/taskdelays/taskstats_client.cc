#include "taskstats_client.h"

#include <linux/taskstats.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <poll.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace taskdelays {
namespace {

// State shared with the libnl callbacks during one receive.
struct RecvContext {
  std::vector<TaskRecord> records;
  int kernel_error = 0;   // negative errno from an NLMSG_ERROR, 0 if none
  bool got_ack = false;
  bool bad_payload = false;
};

void parse_aggregate(nlattr* aggr, bool is_group, RecvContext& ctx) {
  TaskRecord rec;
  rec.is_group = is_group;
  bool have_stats = false;
  nlattr* a;
  int rem;
  // Walk by type: a TASKSTATS_TYPE_NULL pad may precede the data, and new
  // kernels may add attributes we do not know.
  nla_for_each_nested(a, aggr, rem) {
    switch (nla_type(a)) {
      case TASKSTATS_TYPE_PID:
      case TASKSTATS_TYPE_TGID:
        if (nla_len(a) >= 4) rec.id = nla_get_u32(a);
        break;
      case TASKSTATS_TYPE_STATS: {
        auto* p = static_cast<const std::byte*>(nla_data(a));
        auto r = decode_taskstats({p, static_cast<std::size_t>(nla_len(a))});
        if (!r) {
          ctx.bad_payload = true;
          return;
        }
        rec.stats = std::move(*r);
        have_stats = true;
        break;
      }
      default:
        break;
    }
  }
  if (have_stats) ctx.records.push_back(std::move(rec));
}

int on_valid(nl_msg* msg, void* arg) {
  auto& ctx = *static_cast<RecvContext*>(arg);
  nlmsghdr* nlh = nlmsg_hdr(msg);
  auto* gh = static_cast<genlmsghdr*>(nlmsg_data(nlh));
  if (gh->cmd != TASKSTATS_CMD_NEW) return NL_SKIP;
  nlattr* a;
  int rem;
  nla_for_each_attr(a, genlmsg_attrdata(gh, 0), genlmsg_attrlen(gh, 0), rem) {
    if (nla_type(a) == TASKSTATS_TYPE_AGGR_PID) parse_aggregate(a, false, ctx);
    else if (nla_type(a) == TASKSTATS_TYPE_AGGR_TGID) parse_aggregate(a, true, ctx);
  }
  return NL_OK;
}

int on_error(sockaddr_nl*, nlmsgerr* err, void* arg) {
  auto& ctx = *static_cast<RecvContext*>(arg);
  ctx.kernel_error = err->error;
  if (err->error == 0) ctx.got_ack = true;
  return NL_STOP;
}

int on_ack(nl_msg*, void* arg) {
  static_cast<RecvContext*>(arg)->got_ack = true;
  return NL_STOP;
}

ErrorKind kind_for_errno(int e) {
  switch (e) {
    case EPERM: case EACCES: return ErrorKind::permission;
    case ESRCH: return ErrorKind::no_such_process;
    case EINVAL: return ErrorKind::invalid;
    default: return ErrorKind::netlink;
  }
}

// Runs nl_recvmsgs once with our callbacks.
int recv_once(nl_sock* sock, RecvContext& ctx) {
  nl_cb* cb = nl_cb_alloc(NL_CB_DEFAULT);
  if (!cb) throw TaskstatsError(ErrorKind::netlink, NLE_NOMEM, "out of memory");
  nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, &ctx);
  nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, on_ack, &ctx);
  nl_cb_err(cb, NL_CB_CUSTOM, on_error, &ctx);
  int rc = nl_recvmsgs(sock, cb);
  nl_cb_put(cb);
  return rc;
}

}  // namespace

std::string describe(const TaskstatsError& e) {
  switch (e.kind) {
    case ErrorKind::no_taskstats:
      return "the kernel does not provide taskstats (generic netlink family TASKSTATS not found; "
             "needs CONFIG_TASKSTATS)";
    case ErrorKind::permission:
      return "permission denied: taskstats queries require root or CAP_NET_ADMIN";
    default:
      return e.what();
  }
}

TaskstatsClient::TaskstatsClient(int timeout_ms) : timeout_ms_(timeout_ms) {
  sock_ = nl_socket_alloc();
  if (!sock_) throw TaskstatsError(ErrorKind::netlink, NLE_NOMEM, "cannot allocate a netlink socket");
  int rc = genl_connect(sock_);
  if (rc < 0) {
    nl_socket_free(sock_);
    throw TaskstatsError(ErrorKind::netlink, rc,
                         std::string("cannot open a generic netlink socket: ") + nl_geterror(rc));
  }
  nl_socket_disable_auto_ack(sock_);
  rc = genl_ctrl_resolve(sock_, TASKSTATS_GENL_NAME);
  if (rc < 0) {
    nl_socket_free(sock_);
    if (rc == -NLE_OBJ_NOTFOUND) throw TaskstatsError(ErrorKind::no_taskstats, rc, "no taskstats");
    throw TaskstatsError(ErrorKind::netlink, rc,
                         std::string("cannot resolve the TASKSTATS netlink family: ") + nl_geterror(rc));
  }
  family_ = rc;
}

TaskstatsClient::~TaskstatsClient() { nl_socket_free(sock_); }

void TaskstatsClient::send_request(int attr, const void* data, std::size_t len, bool want_ack) {
  nl_msg* msg = nlmsg_alloc();
  if (!msg) throw TaskstatsError(ErrorKind::netlink, NLE_NOMEM, "out of memory");
  int flags = want_ack ? NLM_F_ACK : 0;
  if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family_, 0, flags, TASKSTATS_CMD_GET,
                   TASKSTATS_GENL_VERSION) ||
      nla_put(msg, attr, static_cast<int>(len), data) < 0) {
    nlmsg_free(msg);
    throw TaskstatsError(ErrorKind::netlink, NLE_NOMEM, "cannot build the taskstats request");
  }
  int rc = nl_send_auto(sock_, msg);
  nlmsg_free(msg);
  if (rc < 0)
    throw TaskstatsError(ErrorKind::netlink, rc,
                         std::string("cannot send the taskstats request: ") + nl_geterror(rc));
}

void wait_for_reply(int fd, int wait_ms) {
  pollfd p{fd, POLLIN, 0};
  int r = poll(&p, 1, wait_ms);
  if (r < 0 && errno == EINTR) throw TaskstatsError(ErrorKind::interrupted, EINTR, "interrupted");
  if (r < 0) throw TaskstatsError(ErrorKind::netlink, errno, std::string("poll: ") + strerror(errno));
  if (r == 0) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "timed out after %.1f s waiting for the kernel's taskstats reply",
                  wait_ms / 1000.0);
    throw TaskstatsError(ErrorKind::timeout, ETIMEDOUT, buf);
  }
}

TaskRecord TaskstatsClient::get(uint32_t id, bool group) {
  send_request(group ? TASKSTATS_CMD_ATTR_TGID : TASKSTATS_CMD_ATTR_PID, &id, sizeof id, false);
  RecvContext ctx;
  while (ctx.records.empty() && ctx.kernel_error == 0 && !ctx.bad_payload) {
    wait_for_reply(nl_socket_get_fd(sock_), timeout_ms_);
    int rc = recv_once(sock_, ctx);
    if (rc < 0 && ctx.kernel_error == 0)
      throw TaskstatsError(ErrorKind::netlink, rc,
                           std::string("receiving the taskstats reply: ") + nl_geterror(rc));
  }
  if (ctx.kernel_error < 0) {
    int e = -ctx.kernel_error;
    ErrorKind k = kind_for_errno(e);
    std::string what = (group ? "tgid " : "pid ") + std::to_string(id);
    if (k == ErrorKind::no_such_process) what = "no such process: " + what;
    else what += ": " + std::string(strerror(e));
    throw TaskstatsError(k, e, what);
  }
  if (ctx.bad_payload || ctx.records.empty())
    throw TaskstatsError(ErrorKind::protocol, 0, "malformed taskstats reply from the kernel");
  // A reply carries one aggregate of the kind asked for.
  for (auto& r : ctx.records)
    if (r.is_group == group) return r;
  return ctx.records.front();
}

void TaskstatsClient::register_cpumask(const std::string& cpumask, int rcvbuf) {
  if (rcvbuf > 0) nl_socket_set_buffer_size(sock_, rcvbuf, 0);
  send_request(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, cpumask.c_str(), cpumask.size() + 1, true);
  RecvContext ctx;
  while (!ctx.got_ack && ctx.kernel_error == 0) {
    wait_for_reply(nl_socket_get_fd(sock_), timeout_ms_);
    int rc = recv_once(sock_, ctx);
    if (rc < 0 && ctx.kernel_error == 0 && !ctx.got_ack)
      throw TaskstatsError(ErrorKind::netlink, rc,
                           std::string("registering the listener: ") + nl_geterror(rc));
  }
  if (ctx.kernel_error < 0) {
    int e = -ctx.kernel_error;
    ErrorKind k = kind_for_errno(e);
    std::string what = "cannot listen on CPUs '" + cpumask + "': " + strerror(e);
    if (k == ErrorKind::invalid)
      what += " (listen mode only works in the initial user and pid namespaces)";
    throw TaskstatsError(k, e, what);
  }
  // Exit records come with per-CPU sequence numbers, not ours.
  nl_socket_disable_seq_check(sock_);
}

void TaskstatsClient::deregister_cpumask(const std::string& cpumask) {
  try {
    send_request(TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK, cpumask.c_str(), cpumask.size() + 1, false);
  } catch (const TaskstatsError&) {
    // The kernel also drops the registration when the socket closes.
  }
}

long TaskstatsClient::receive_exits(const std::function<void(const TaskRecord&)>& sink, int wait_ms) {
  wait_for_reply(nl_socket_get_fd(sock_), wait_ms);
  RecvContext ctx;
  int rc = recv_once(sock_, ctx);
  long lost = 0;
  if (rc == -NLE_NOMEM) lost = 1;  // ENOBUFS: the kernel dropped records
  else if (rc < 0 && ctx.kernel_error == 0)
    throw TaskstatsError(ErrorKind::netlink, rc, std::string("receiving exit records: ") + nl_geterror(rc));
  for (const auto& r : ctx.records) sink(r);
  return lost;
}

}  // namespace taskdelays
