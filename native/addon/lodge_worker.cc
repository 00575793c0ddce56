// What Lodge's Node worker (sidecar/src/runtime-node) needs of the kernel and Node lacks,
// to take requests on the app's own socket (PROTOCOL.md, "Straight to the app"):
//
// - mapShared(fd, length): its scoreboard slots mapped, so that a request's begin and end
//   are stores, not system calls (scoreboard/LAYOUT.md);
// - closeOnExec(fd): the descriptors lodged handed down kept from the app's programs;
// - FdWatch(fd, callback) with start(events)/stop()/close(), and accept(fd): the listening
//   socket accepted only while the worker has a lane free. libuv's own listen accepts
//   whatever comes, and a net.Server has no way to stop accepting short of closing the
//   descriptor, which every worker of the app shares;
// - recv(fd, buffer), send(fd, buffers), close(fd): an accepted connection read and
//   written as it is (raw-link.ts). A net.Socket made on each costs eight system calls
//   before its first byte and a shutdown at its end; a request whose bytes are there
//   when it is accepted is answered with none of them, and with no watch at all.
//
// Loaded by the tenant's worker process: nothing here is privileged, and a fault costs
// only that tenant's worker.
#include <napi.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace {

Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// mapShared(fd, length) -> ArrayBuffer over a MAP_SHARED, read-write map of the file's
// first `length` bytes; unmapped when the buffer is collected.
Napi::Value MapShared(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "mapShared(fd, length): two numbers").ThrowAsJavaScriptException();
    return env.Null();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  double want = info[1].As<Napi::Number>().DoubleValue();
  if (!(want >= 1 && want <= (1 << 30))) {
    Napi::RangeError::New(env, "mapShared: length must be 1 byte to 1 GiB").ThrowAsJavaScriptException();
    return env.Null();
  }
  size_t length = static_cast<size_t>(want);
  void* p = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return ThrowErrno(env, errno, "mmap");
  return Napi::ArrayBuffer::New(env, p, length, [](Napi::Env, void* data, size_t* len) {
    munmap(data, *len);
    delete len;
  }, new size_t(length));
}

// accept(fd) -> a connection's descriptor (non-blocking, close-on-exec), or -1 when none
// is waiting (another worker of the app took it) or it was gone before it was taken.
Napi::Value Accept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) {
    Napi::TypeError::New(env, "accept(fd): a number").ThrowAsJavaScriptException();
    return env.Null();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  for (;;) {
    int c = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) return Napi::Number::New(env, c);
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(env, -1);
    return ThrowErrno(env, errno, "accept4");
  }
}

// recv(fd, buffer, peek) -> bytes read into the buffer's start (left in the socket too
// when peek), 0 at end of file, or -errno (-EAGAIN: nothing there yet). Never throws
// for the peer's doing.
Napi::Value Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsBuffer()) {
    Napi::TypeError::New(env, "recv(fd, buffer)").ThrowAsJavaScriptException();
    return env.Null();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Buffer<unsigned char> buf = info[1].As<Napi::Buffer<unsigned char>>();
  for (;;) {
    int flags = MSG_DONTWAIT | (info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value() ? MSG_PEEK : 0);
    ssize_t n = recv(fd, buf.Data(), buf.Length(), flags);
    if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
    if (errno == EINTR) continue;
    return Napi::Number::New(env, -errno);
  }
}

// send(fd, buffers) -> bytes written of the buffers, in order (maybe fewer than all), or
// -errno (-EAGAIN: the peer's queue is full). No SIGPIPE: a peer gone is -EPIPE.
Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsArray()) {
    Napi::TypeError::New(env, "send(fd, buffers)").ThrowAsJavaScriptException();
    return env.Null();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Array list = info[1].As<Napi::Array>();
  // More than this go in the next call: the caller sends the rest.
  constexpr uint32_t kMaxParts = 64;
  struct iovec iov[kMaxParts];
  uint32_t parts = 0;
  for (uint32_t i = 0; i < list.Length() && parts < kMaxParts; i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsBuffer()) {
      Napi::TypeError::New(env, "send(fd, buffers): each one a Buffer").ThrowAsJavaScriptException();
      return env.Null();
    }
    Napi::Buffer<unsigned char> b = v.As<Napi::Buffer<unsigned char>>();
    if (b.Length() == 0) continue;
    iov[parts].iov_base = b.Data();
    iov[parts].iov_len = b.Length();
    parts++;
  }
  if (parts == 0) return Napi::Number::New(env, 0);
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = iov;
  msg.msg_iovlen = parts;
  for (;;) {
    ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
    if (errno == EINTR) continue;
    return Napi::Number::New(env, -errno);
  }
}

// close(fd): the connection's end (its watch, if any, closed first).
Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) {
    Napi::TypeError::New(env, "close(fd): a number").ThrowAsJavaScriptException();
    return env.Null();
  }
  // Linux frees the descriptor even when close is interrupted: never retried.
  close(info[0].As<Napi::Number>().Int32Value());
  return env.Undefined();
}

// closeOnExec(fd): a descriptor lodged handed down is not passed on to programs the app runs.
Napi::Value CloseOnExec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) {
    Napi::TypeError::New(env, "closeOnExec(fd): a number").ThrowAsJavaScriptException();
    return env.Null();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int flags = fcntl(fd, F_GETFD);
  if (flags == -1 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == -1) return ThrowErrno(env, errno, "fcntl");
  return env.Undefined();
}

// Calls back on the event loop, with libuv's status and the events that came, whenever
// `fd` is ready for what start(events) asked (1 readable, 2 writable, 3 both), until
// stop() or close(). Refs the loop while started, unless unref()'d.
class FdWatch : public Napi::ObjectWrap<FdWatch> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdWatch", {
      InstanceMethod("start", &FdWatch::Start),
      InstanceMethod("stop", &FdWatch::Stop),
      InstanceMethod("close", &FdWatch::Close),
      InstanceMethod("ref", &FdWatch::SetRef),
    });
  }

  FdWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatch>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsNumber() || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "new FdWatch(fd, callback)").ThrowAsJavaScriptException();
      return;
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      Napi::Error::New(env, "FdWatch: no event loop").ThrowAsJavaScriptException();
      return;
    }
    handle_ = new uv_poll_t;
    int rc = uv_poll_init(loop, handle_, info[0].As<Napi::Number>().Int32Value());
    if (rc != 0) {
      delete handle_;
      handle_ = nullptr;
      Napi::Error::New(env, std::string("uv_poll_init: ") + uv_strerror(rc)).ThrowAsJavaScriptException();
      return;
    }
    handle_->data = this;
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    context_ = new Napi::AsyncContext(env, "LodgeFdWatch");
  }

  ~FdWatch() override {
    Shut();
    delete context_;
  }

 private:
  static void OnReady(uv_poll_t* h, int status, int events) {
    FdWatch* self = static_cast<FdWatch*>(h->data);
    if (self == nullptr) return;
    Napi::Env env = self->callback_.Env();
    Napi::HandleScope scope(env);
    // An error (EBADF: the descriptor went) is the callback's to see, as a number.
    self->callback_.MakeCallback(env.Global(), {Napi::Number::New(env, status), Napi::Number::New(env, events)},
                                 *self->context_);
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    int events = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() & (UV_READABLE | UV_WRITABLE) : UV_READABLE;
    if (handle_ == nullptr) return info.Env().Undefined();
    if (events == 0) {
      Pause();
      return info.Env().Undefined();
    }
    int rc = uv_poll_start(handle_, events, OnReady);
    if (rc != 0) return ThrowErrno(info.Env(), -rc, "uv_poll_start");
    if (!active_) {
      active_ = true;
      // Held while watching: the worker's JS object must outlive its callbacks.
      Ref();
    }
    return info.Env().Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    Pause();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shut();
    return info.Env().Undefined();
  }

  // ref(false): a started watch does not keep the worker's loop alive by itself.
  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    unrefd_ = info[0].IsBoolean() && !info[0].As<Napi::Boolean>().Value();
    if (handle_ != nullptr) {
      if (unrefd_) uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
      else uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
    }
    return info.Env().Undefined();
  }

  void Pause() {
    if (handle_ != nullptr && active_) {
      uv_poll_stop(handle_);
      active_ = false;
      Unref();
    }
  }

  // The handle is freed by libuv once closed; the descriptor stays open (the caller's to close).
  void Shut() {
    Pause();
    if (handle_ != nullptr) {
      handle_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      handle_ = nullptr;
    }
  }

  uv_poll_t* handle_ = nullptr;
  bool active_ = false;
  bool unrefd_ = false;
  Napi::FunctionReference callback_;
  Napi::AsyncContext* context_ = nullptr;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("mapShared", Napi::Function::New(env, MapShared));
  exports.Set("accept", Napi::Function::New(env, Accept));
  exports.Set("closeOnExec", Napi::Function::New(env, CloseOnExec));
  exports.Set("recv", Napi::Function::New(env, Recv));
  exports.Set("send", Napi::Function::New(env, Send));
  exports.Set("close", Napi::Function::New(env, Close));
  exports.Set("FdWatch", FdWatch::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(lodge_worker, Init)
