// The few POSIX calls lodged needs and Node lacks. One system call per function;
// policy stays in TypeScript (sidecar/src/posix.ts).
#include <napi.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <poll.h>
#include <signal.h>
#include <string>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

// Errors shaped like Node's own system errors, so callers test err.code.
Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + strerror(err));
  const char* code = err == EPERM ? "EPERM" : err == ESRCH ? "ESRCH" : err == EINVAL ? "EINVAL"
                   : err == EBADF ? "EBADF" : err == ENOTSOCK ? "ENOTSOCK" : err == EACCES ? "EACCES"
                   : err == ENOENT ? "ENOENT" : err == ELOOP ? "ELOOP" : err == ENOTDIR ? "ENOTDIR"
                   : err == ENXIO ? "ENXIO" : err == ECHILD ? "ECHILD" : err == EEXIST ? "EEXIST"
                   : err == ENOSPC ? "ENOSPC" : err == EROFS ? "EROFS" : err == EAGAIN ? "EAGAIN" : err == EPIPE ? "EPIPE"
                   : err == ECONNRESET ? "ECONNRESET" : "EOTHER";
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

bool RequireInts(const Napi::CallbackInfo& info, size_t n, const char* what) {
  for (size_t i = 0; i < n; i++) {
    if (!info[i].IsNumber()) {
      Napi::TypeError::New(info.Env(), what).ThrowAsJavaScriptException();
      return false;
    }
  }
  return true;
}

// getPeerCred(fd) -> {pid, uid, gid} of the other end of a unix socket.
Napi::Value GetPeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireInts(info, 1, "getPeerCred(fd): fd must be a number")) return env.Null();
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
    return ThrowErrno(env, errno, "getsockopt(SO_PEERCRED)");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, cred.pid));
  out.Set("uid", Napi::Number::New(env, cred.uid));
  out.Set("gid", Napi::Number::New(env, cred.gid));
  return out;
}

// killGroup(pgid, signal): signals a whole process group; ESRCH means it is gone already.
Napi::Value KillGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireInts(info, 2, "killGroup(pgid, signal): both must be numbers")) return env.Null();
  pid_t pgid = info[0].As<Napi::Number>().Int32Value();
  int sig = info[1].As<Napi::Number>().Int32Value();
  if (pgid <= 1) {
    Napi::RangeError::New(env, "killGroup: pgid must be > 1").ThrowAsJavaScriptException();
    return env.Null();
  }
  if (kill(-pgid, sig) == -1) {
    if (errno == ESRCH) return Napi::Boolean::New(env, false);
    return ThrowErrno(env, errno, "kill");
  }
  return Napi::Boolean::New(env, true);
}

// setLimit(pid, resource, soft, hard): prlimit(2) on another process (or 0 for self).
Napi::Value SetLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireInts(info, 4, "setLimit(pid, resource, soft, hard): all must be numbers")) return env.Null();
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  int resource = info[1].As<Napi::Number>().Int32Value();
  double soft = info[2].As<Napi::Number>().DoubleValue();
  double hard = info[3].As<Napi::Number>().DoubleValue();
  struct rlimit lim;
  lim.rlim_cur = soft < 0 ? RLIM_INFINITY : static_cast<rlim_t>(soft);
  lim.rlim_max = hard < 0 ? RLIM_INFINITY : static_cast<rlim_t>(hard);
  if (prlimit(pid, static_cast<__rlimit_resource>(resource), &lim, nullptr) == -1) {
    return ThrowErrno(env, errno, "prlimit");
  }
  return env.Undefined();
}

// setChildSubreaper(): prctl(PR_SET_CHILD_SUBREAPER). A worker's orphans come to lodged
// instead of init, so lodged can reap them even where init does not.
Napi::Value SetChildSubreaper(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == -1) return ThrowErrno(env, errno, "prctl(PR_SET_CHILD_SUBREAPER)");
  return env.Undefined();
}

// mallocTrim() -> whether memory was given back: malloc_trim(3), glibc's own call that
// returns the free pages inside the malloc heap to the kernel (free() gives back only
// the heap's top). false where the C library has none.
Napi::Value MallocTrim(const Napi::CallbackInfo& info) {
#ifdef __GLIBC__
  return Napi::Boolean::New(info.Env(), malloc_trim(0) == 1);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

// reapChild(pid) -> pid when it was reaped, 0 while it runs, -1 when it is not (or no
// longer) lodged's child. waitpid(2) on one pid only: libuv waits for the workers it
// spawned itself, and a wait on any child would steal their exit status.
Napi::Value ReapChild(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireInts(info, 1, "reapChild(pid): pid must be a number")) return env.Null();
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  if (pid <= 1) {
    Napi::RangeError::New(env, "reapChild: pid must be > 1").ThrowAsJavaScriptException();
    return env.Null();
  }
  int status;
  pid_t r;
  do {
    r = waitpid(pid, &status, WNOHANG);
  } while (r == -1 && errno == EINTR);
  if (r == -1) {
    if (errno == ECHILD) return Napi::Number::New(env, -1);
    return ThrowErrno(env, errno, "waitpid");
  }
  return Napi::Number::New(env, r);
}

// The calling thread's file-system identity. Linux keeps credentials per thread; the
// raw system calls change only this one (glibc's setgroups() would change them all).
struct ThreadCreds {
  uid_t fsuid;
  gid_t fsgid;
  std::vector<gid_t> groups;
};

bool SaveCreds(ThreadCreds* c) {
  c->fsuid = static_cast<uid_t>(syscall(SYS_setfsuid, -1));
  c->fsgid = static_cast<gid_t>(syscall(SYS_setfsgid, -1));
  long n = syscall(SYS_getgroups, 0, nullptr);
  if (n < 0) return false;
  c->groups.resize(static_cast<size_t>(n));
  return syscall(SYS_getgroups, n, c->groups.data()) == n;
}

// setfsuid(2) reports no error; the only check is reading the value back.
bool SetCreds(uid_t uid, gid_t gid, const gid_t* groups, size_t ngroups) {
  if (syscall(SYS_setgroups, ngroups, groups) == -1) return false;
  syscall(SYS_setfsgid, gid);
  syscall(SYS_setfsuid, uid);
  return static_cast<uid_t>(syscall(SYS_setfsuid, -1)) == uid && static_cast<gid_t>(syscall(SYS_setfsgid, -1)) == gid;
}

void RestoreCreds(const ThreadCreds& c) {
  // lodged's main thread must never go on with a tenant's identity.
  if (!SetCreds(c.fsuid, c.fsgid, c.groups.data(), c.groups.size())) abort();
}

// Opens (creating) `rel` under `dir` for appending, as uid/gid would, following no
// symbolic link anywhere below `dir`. A missing last folder is created 0750, as the
// worker does for its log.
int OpenAppendBelow(const char* dir, const std::string& rel) {
  int at = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (at == -1) return -1;
  size_t start = 0;
  for (;;) {
    size_t slash = rel.find('/', start);
    std::string part = rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty() || part == "." || part == "..") {
      close(at);
      errno = EINVAL;
      return -1;
    }
    if (slash == std::string::npos) {
      // O_NONBLOCK: a FIFO put in the log's place must not hang lodged.
      int fd = openat(at, part.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0640);
      int e = errno;
      close(at);
      errno = e;
      return fd;
    }
    int next = openat(at, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next == -1 && errno == ENOENT && rel.find('/', slash + 1) == std::string::npos) {
      if (mkdirat(at, part.c_str(), 0750) == -1 && errno != EEXIST) {
        int e = errno;
        close(at);
        errno = e;
        return -1;
      }
      next = openat(at, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    int e = errno;
    close(at);
    if (next == -1) {
      errno = e;
      return -1;
    }
    at = next;
    start = slash + 1;
  }
}

// openAppendAs(dir, rel, uid, gid) -> fd: `rel` below `dir` opened for appending with
// the file-system identity of uid/gid (and gid as the only group), no symbolic link
// followed below `dir`. The caller checks what it got with fstat.
Napi::Value OpenAppendAs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsString()) {
    Napi::TypeError::New(env, "openAppendAs(dir, rel, uid, gid): dir and rel must be strings").ThrowAsJavaScriptException();
    return env.Null();
  }
  if (!info[2].IsNumber() || !info[3].IsNumber()) {
    Napi::TypeError::New(env, "openAppendAs(dir, rel, uid, gid): uid and gid must be numbers").ThrowAsJavaScriptException();
    return env.Null();
  }
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  std::string rel = info[1].As<Napi::String>().Utf8Value();
  uid_t uid = info[2].As<Napi::Number>().Uint32Value();
  gid_t gid = info[3].As<Napi::Number>().Uint32Value();
  if (uid == 0 || rel.empty() || rel[0] == '/') {
    Napi::RangeError::New(env, "openAppendAs: uid must not be 0 and rel must be relative").ThrowAsJavaScriptException();
    return env.Null();
  }
  ThreadCreds saved;
  if (!SaveCreds(&saved)) return ThrowErrno(env, errno, "getgroups");
  if (!SetCreds(uid, gid, &gid, 1)) {
    int e = errno ? errno : EPERM;
    RestoreCreds(saved);
    return ThrowErrno(env, e, "setfsuid");
  }
  int fd = OpenAppendBelow(dir.c_str(), rel);
  int e = errno;
  RestoreCreds(saved);
  if (fd == -1) return ThrowErrno(env, e, "openat");
  return Napi::Number::New(env, fd);
}

// socketPair() -> [a, b]: a connected unix stream pair, both close-on-exec. A worker's
// end becomes its fd 3 (spawn dup2s it, which clears the flag there); lodged's end can
// be lent to Apache (sendWithFd) because it is a plain socket lodged owns.
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
    return ThrowErrno(env, errno, "socketpair");
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(uint32_t(0), Napi::Number::New(env, sv[0]));
  out.Set(uint32_t(1), Napi::Number::New(env, sv[1]));
  return out;
}

// sendWithFd(sock, data, fd) -> bytes sent: data on `sock` with a copy of descriptor
// `fd` attached (SCM_RIGHTS), without waiting. The caller sends only when nothing else
// is queued on `sock`, and treats a short count as the peer being stuck.
Napi::Value SendWithFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "sendWithFd(sock, data, fd): numbers and a Buffer").ThrowAsJavaScriptException();
    return env.Null();
  }
  int sock = info[0].As<Napi::Number>().Int32Value();
  Napi::Buffer<char> data = info[1].As<Napi::Buffer<char>>();
  int fd = info[2].As<Napi::Number>().Int32Value();
  struct iovec iov;
  iov.iov_base = data.Data();
  iov.iov_len = data.Length();
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t n;
  do {
    n = sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n == -1 && errno == EINTR);
  if (n == -1) return ThrowErrno(env, errno, "sendmsg");
  return Napi::Number::New(env, static_cast<double>(n));
}

// listenUnix(path, backlog, uid, gid, mode) -> fd: a listening unix stream socket at
// `path`, close-on-exec and non-blocking (the workers that accept on it share it, and
// one that loses the race for a connection must not block). Bound at path + ".new"
// first, given its owner and mode, then renamed over `path`: a peer connecting at any
// moment reaches the old socket or the new one, never no socket and never one that
// anybody may connect to.
Napi::Value ListenUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber() || !info[4].IsNumber()) {
    Napi::TypeError::New(env, "listenUnix(path, backlog, uid, gid, mode): a string and numbers").ThrowAsJavaScriptException();
    return env.Null();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string tmp = path + ".new";
  int backlog = info[1].As<Napi::Number>().Int32Value();
  uid_t uid = static_cast<uid_t>(info[2].As<Napi::Number>().Int64Value());
  gid_t gid = static_cast<gid_t>(info[3].As<Napi::Number>().Int64Value());
  mode_t mode = static_cast<mode_t>(info[4].As<Napi::Number>().Int32Value());
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (tmp.size() >= sizeof sa.sun_path) {
    Napi::RangeError::New(env, "listenUnix: path too long for a unix socket").ThrowAsJavaScriptException();
    return env.Null();
  }
  memcpy(sa.sun_path, tmp.c_str(), tmp.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd == -1) return ThrowErrno(env, errno, "socket");
  unlink(tmp.c_str());
  const char* failed = nullptr;
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) == -1) failed = "bind";
  else if (chown(tmp.c_str(), uid, gid) == -1) failed = "chown";
  else if (chmod(tmp.c_str(), mode) == -1) failed = "chmod";
  else if (listen(fd, backlog) == -1) failed = "listen";
  else if (rename(tmp.c_str(), path.c_str()) == -1) failed = "rename";
  if (failed != nullptr) {
    int e = errno;
    unlink(tmp.c_str());
    close(fd);
    return ThrowErrno(env, e, failed);
  }
  return Napi::Number::New(env, fd);
}

// pending(fd) -> whether a listening socket has a connection waiting to be accepted
// (poll for POLLIN, not waiting).
Napi::Value Pending(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) {
    Napi::TypeError::New(env, "pending(fd): a number").ThrowAsJavaScriptException();
    return env.Null();
  }
  struct pollfd p;
  p.fd = info[0].As<Napi::Number>().Int32Value();
  p.events = POLLIN;
  p.revents = 0;
  int n;
  do {
    n = poll(&p, 1, 0);
  } while (n == -1 && errno == EINTR);
  if (n == -1) return ThrowErrno(env, errno, "poll");
  return Napi::Boolean::New(env, n > 0 && (p.revents & POLLIN) != 0);
}

// listenQueue(fd) -> connections waiting in a listening unix socket's queue, from the
// kernel's socket diagnostics (one netlink request for that socket's inode, as `ss -xl`
// shows Recv-Q); -1 where the kernel does not answer it (no unix_diag).
Napi::Value ListenQueue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) {
    Napi::TypeError::New(env, "listenQueue(fd): a number").ThrowAsJavaScriptException();
    return env.Null();
  }
  struct stat st;
  if (fstat(info[0].As<Napi::Number>().Int32Value(), &st) == -1) return ThrowErrno(env, errno, "fstat");
  int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl == -1) return Napi::Number::New(env, -1);
  struct {
    struct nlmsghdr h;
    struct unix_diag_req r;
  } req;
  memset(&req, 0, sizeof req);
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.h.nlmsg_flags = NLM_F_REQUEST;
  req.r.sdiag_family = AF_UNIX;
  req.r.udiag_states = ~0U;
  req.r.udiag_ino = static_cast<unsigned>(st.st_ino);
  req.r.udiag_show = UDIAG_SHOW_RQLEN;
  req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0U;  // no cookie: by inode alone
  long result = -1;
  alignas(struct nlmsghdr) char buf[1024];
  struct timeval tv = {1, 0};
  setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (send(nl, &req, sizeof req, 0) == static_cast<ssize_t>(sizeof req)) {
    ssize_t n = recv(nl, buf, sizeof buf, 0);
    struct nlmsghdr* h = reinterpret_cast<struct nlmsghdr*>(buf);
    if (n > 0 && NLMSG_OK(h, static_cast<unsigned>(n)) && h->nlmsg_type == SOCK_DIAG_BY_FAMILY) {
      struct unix_diag_msg* m = static_cast<struct unix_diag_msg*>(NLMSG_DATA(h));
      int left = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
      for (struct rtattr* a = reinterpret_cast<struct rtattr*>(m + 1); RTA_OK(a, left); a = RTA_NEXT(a, left)) {
        if (a->rta_type == UNIX_DIAG_RQLEN && RTA_PAYLOAD(a) >= sizeof(struct unix_diag_rqlen)) {
          result = static_cast<struct unix_diag_rqlen*>(RTA_DATA(a))->udiag_rqueue;
        }
      }
    }
  }
  close(nl);
  return Napi::Number::New(env, static_cast<double>(result));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("getPeerCred", Napi::Function::New(env, GetPeerCred));
  exports.Set("killGroup", Napi::Function::New(env, KillGroup));
  exports.Set("setLimit", Napi::Function::New(env, SetLimit));
  exports.Set("setChildSubreaper", Napi::Function::New(env, SetChildSubreaper));
  exports.Set("reapChild", Napi::Function::New(env, ReapChild));
  exports.Set("mallocTrim", Napi::Function::New(env, MallocTrim));
  exports.Set("openAppendAs", Napi::Function::New(env, OpenAppendAs));
  exports.Set("socketPair", Napi::Function::New(env, SocketPair));
  exports.Set("sendWithFd", Napi::Function::New(env, SendWithFd));
  exports.Set("listenUnix", Napi::Function::New(env, ListenUnix));
  exports.Set("pending", Napi::Function::New(env, Pending));
  exports.Set("listenQueue", Napi::Function::New(env, ListenQueue));
  exports.Set("CLK_TCK", Napi::Number::New(env, static_cast<double>(sysconf(_SC_CLK_TCK))));
  exports.Set("PAGE_SIZE", Napi::Number::New(env, static_cast<double>(sysconf(_SC_PAGESIZE))));
  Napi::Object res = Napi::Object::New(env);
  res.Set("NPROC", Napi::Number::New(env, RLIMIT_NPROC));
  res.Set("AS", Napi::Number::New(env, RLIMIT_AS));
  res.Set("CPU", Napi::Number::New(env, RLIMIT_CPU));
  res.Set("CORE", Napi::Number::New(env, RLIMIT_CORE));
  res.Set("NOFILE", Napi::Number::New(env, RLIMIT_NOFILE));
  exports.Set("RLIMIT", res);
  return exports;
}

}  // namespace

NODE_API_MODULE(lodge_posix, Init)
