// Asynchronous jobs of the native objects: the job runs on a libuv worker thread and touches no
// JS; everything else runs on the JS thread.
#pragma once

#include <napi.h>

#include <cstring>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "aligned_buffer.h"
#include "napi_guard.h"

namespace bptt {

// An asynchronous job never touches the caller's arrays off the JS thread: it reads copies of its
// inputs taken when it is queued, writes its results into buffers of its own, and copies them out
// on the JS thread when it ends (after checking the arrays are still there: a caller may have
// transferred or detached them meanwhile). Synchronous calls (stage == null) use the arrays in
// place.
class Staging {
 public:
  const float* Input(const float* data, size_t n) {
    if (data == nullptr) return nullptr;
    inputs_.emplace_back();
    float* copy = inputs_.back().floats(n);
    std::memcpy(copy, data, n * sizeof(float));
    return copy;
  }

  float* Output(Napi::Value array, size_t n) {
    outputs_.emplace_back();
    StagedOutput& o = outputs_.back();
    o.array = Napi::Persistent(array);
    o.n = n;
    return o.buffer.floats(n);
  }

  // An array the job reads and rewrites (parameters and optimizer state of a training step):
  // a copy of it, written back when the job succeeds.
  float* InOut(Napi::Value array, const float* data, size_t n) {
    float* copy = Output(array, n);
    std::memcpy(copy, data, n * sizeof(float));
    return copy;
  }

  // Copies every result into its array; false (and a message) if one cannot take it any more.
  bool CopyOut(Napi::Env env, std::string* error) {
    for (StagedOutput& o : outputs_) {
      napi_typedarray_type type;
      size_t length = 0;
      void* data = nullptr;
      if (napi_get_typedarray_info(env, o.array.Value(), &type, &length, &data, nullptr, nullptr) != napi_ok ||
          type != napi_float32_array || length != o.n || data == nullptr) {
        *error = "an output array was detached or transferred while the asynchronous call ran; its results are lost";
        return false;
      }
      std::memcpy(data, o.buffer.get<float>(), o.n * sizeof(float));
    }
    return true;
  }

 private:
  struct StagedOutput {
    Napi::Reference<Napi::Value> array;
    AlignedBuffer buffer;
    size_t n = 0;
  };
  std::vector<AlignedBuffer> inputs_;
  std::list<StagedOutput> outputs_;  // a list: references must not move
};

// An input as the job reads it: a copy when staged.
inline const float* In(Staging* stage, const float* data, size_t n) { return stage && data ? stage->Input(data, n) : data; }

// An output as the job writes it: a buffer of the job's when staged.
inline float* Out(Staging* stage, Napi::Value array, float* data, size_t n) { return stage && data ? stage->Output(array, n) : data; }

// One asynchronous job: `work` runs off the JS thread and touches no JS; back on it `done` runs
// whatever happened (clearing busy flags), then the staged outputs are copied out and the promise
// resolves with `result()` or rejects. The completion throws nothing: it also runs while a worker
// thread is being terminated, when Node refuses to settle the promise, and after a cancellation at
// teardown. The objects in `keep` (the native object, records) stay alive until then.
class StagedWorker : public Napi::AsyncWorker {
 public:
  StagedWorker(Napi::Env env, std::vector<Napi::Reference<Napi::Value>> keep, std::unique_ptr<Staging> stage,
               std::function<void()> work, std::function<void(napi_env)> done, std::function<napi_value(napi_env)> result)
      : Napi::AsyncWorker(env, "bptt.job"), stage_(std::move(stage)), work_(std::move(work)), done_(std::move(done)),
        result_(std::move(result)), keep_(std::move(keep)) {
    if (napi_create_promise(env, &deferred_, &promise_) != napi_ok) throw Napi::Error::New(env);
  }

  // Queues the job (Node owns it from then on: its completion destroys it); returns its promise.
  static Napi::Value Start(Napi::Env env, std::unique_ptr<StagedWorker> worker) {
    worker->Queue();
    return Napi::Value(env, worker.release()->promise_);
  }

 protected:
  void Execute() override { work_(); }

  // Replaces node-addon-api's, which lets exceptions of other types than std::exception escape.
  void OnExecute(Napi::Env) override {
    try {
      Execute();
    } catch (...) {
      failure_ = CaptureFailure(std::current_exception());
      failed_ = true;
    }
  }

  void OnWorkComplete(Napi::Env env, napi_status status) override {
    done_(env);
    if (status != napi_ok) {
      failure_ = {Failure::Kind::kError, "the job was cancelled (its environment is shutting down)"};
      failed_ = true;
    } else if (!failed_ && stage_) {
      std::string error;
      try {
        if (!stage_->CopyOut(env, &error)) failure_ = {Failure::Kind::kError, error}, failed_ = true;
      } catch (...) {
        failure_ = CaptureFailure(std::current_exception());
        failed_ = true;
      }
    }
    if (!failed_) {
      napi_value value = result_ ? result_(env) : nullptr;
      if (value == nullptr) napi_get_undefined(env, &value);
      napi_resolve_deferred(env, deferred_, value);
    } else {
      napi_value error = MakeError(env, failure_);
      if (error == nullptr) napi_get_undefined(env, &error);
      napi_reject_deferred(env, deferred_, error);
    }
    Destroy();
  }

 private:
  std::unique_ptr<Staging> stage_;
  std::function<void()> work_;
  std::function<void(napi_env)> done_;
  std::function<napi_value(napi_env)> result_;
  std::vector<Napi::Reference<Napi::Value>> keep_;
  napi_deferred deferred_ = nullptr;
  napi_value promise_ = nullptr;
  Failure failure_;
  bool failed_ = false;
};

}  // namespace bptt
