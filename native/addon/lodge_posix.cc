// The few POSIX calls lodged needs and Node lacks. One system call per function;
// policy stays in TypeScript (sidecar/src/posix.ts).
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

namespace {

// Errors shaped like Node's own system errors, so callers test err.code.
Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + strerror(err));
  const char* code = err == EPERM ? "EPERM" : err == ESRCH ? "ESRCH" : err == EINVAL ? "EINVAL"
                   : err == EBADF ? "EBADF" : err == ENOTSOCK ? "ENOTSOCK" : "EOTHER";
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("getPeerCred", Napi::Function::New(env, GetPeerCred));
  exports.Set("killGroup", Napi::Function::New(env, KillGroup));
  exports.Set("setLimit", Napi::Function::New(env, SetLimit));
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
