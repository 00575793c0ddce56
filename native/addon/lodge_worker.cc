// What Lodge's Node worker (sidecar/src/runtime-node) needs of the kernel and Node lacks,
// to take requests on the app's own socket (PROTOCOL.md, "Straight to the app"):
//
// - mapShared(fd, length): its scoreboard slots mapped, so that a request's begin and end
//   are stores, not system calls (scoreboard/LAYOUT.md);
// - closeOnExec(fd): the descriptors lodged handed down kept from the app's programs;
// - ReadWatch(fd, callback) with start()/stop()/close(), and accept(fd): the listening
//   socket accepted only while the worker has a lane free. libuv's own listen accepts
//   whatever comes, and a net.Server has no way to stop accepting short of closing the
//   descriptor, which every worker of the app shares.
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

// Calls back on the event loop whenever `fd` is readable, while started.
class ReadWatch : public Napi::ObjectWrap<ReadWatch> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ReadWatch", {
      InstanceMethod("start", &ReadWatch::Start),
      InstanceMethod("stop", &ReadWatch::Stop),
      InstanceMethod("close", &ReadWatch::Close),
    });
  }

  ReadWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ReadWatch>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsNumber() || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "new ReadWatch(fd, callback)").ThrowAsJavaScriptException();
      return;
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      Napi::Error::New(env, "ReadWatch: no event loop").ThrowAsJavaScriptException();
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
    context_ = new Napi::AsyncContext(env, "LodgeReadWatch");
  }

  ~ReadWatch() override {
    Shut();
    delete context_;
  }

 private:
  static void OnReadable(uv_poll_t* h, int status, int) {
    ReadWatch* self = static_cast<ReadWatch*>(h->data);
    if (self == nullptr) return;
    Napi::Env env = self->callback_.Env();
    Napi::HandleScope scope(env);
    // An error (EBADF: the descriptor went) is the callback's to see, as a number.
    self->callback_.MakeCallback(env.Global(), {Napi::Number::New(env, status)}, *self->context_);
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr && !active_) {
      int rc = uv_poll_start(handle_, UV_READABLE, OnReadable);
      if (rc != 0) return ThrowErrno(info.Env(), -rc, "uv_poll_start");
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

  void Pause() {
    if (handle_ != nullptr && active_) {
      uv_poll_stop(handle_);
      active_ = false;
      Unref();
    }
  }

  // The handle is freed by libuv once closed; the descriptor stays open (it is not ours).
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
  Napi::FunctionReference callback_;
  Napi::AsyncContext* context_ = nullptr;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("mapShared", Napi::Function::New(env, MapShared));
  exports.Set("accept", Napi::Function::New(env, Accept));
  exports.Set("closeOnExec", Napi::Function::New(env, CloseOnExec));
  exports.Set("ReadWatch", ReadWatch::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(lodge_worker, Init)
