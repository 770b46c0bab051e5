// JS glue for the RNN: argument parsing and validation (again, after the TS layer: a bad call
// from any caller must end in a JS exception, never in undefined behaviour), and the sync and
// async entry points. The math lives in rnn.cc.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "bindings.h"
#include "cpu.h"
#include "rnn.h"
#include "thread_pool.h"

namespace bptt {
namespace {

constexpr double kMaxElements = 2147483647.0;  // keeps every index inside int32

enum class JobKind { kForward, kGradients, kTrainStep };

// A fully validated call: raw pointers into typed arrays that `keep_alive` holds.
struct Job {
  JobKind kind;
  RnnShape shape{};
  RnnParams params{};
  MutableParams mutable_params{};
  RnnBatch batch{};
  size_t truncate = 0;
  Reduction reduction = Reduction::kMean;
  ClipConfig clip;
  OptimizerConfig optimizer;
  float* optimizer_state[5][2] = {};
  float* states = nullptr;  // forward outputs
  float* logits = nullptr;
  RnnGrads grads{};  // gradients outputs
  float* hT = nullptr;
  StateCapture capture;
  // results
  LossResult loss{};
  double* step_out = nullptr;  // trainStep: loss, gradNorm, clipped (1 or 0)
};

// Property names as JS strings, made once per engine: a lookup by C string would create and
// internalize the name again on every call, which costs more than a small model's arithmetic.
// The strings live in a referenced JS array (Node-API before version 10 cannot reference a
// string itself).
class PropertyNames {
 public:
  Napi::Value Get(Napi::Env env, const char* name) {
    if (store_.IsEmpty()) store_ = Napi::Persistent(Napi::Array::New(env));
    Napi::Array store = store_.Value();
    auto it = index_.find(name);
    if (it == index_.end()) {
      it = index_.emplace(name, static_cast<uint32_t>(index_.size())).first;
      store.Set(it->second, Napi::String::New(env, name));
    }
    return store.Get(it->second);
  }

 private:
  Napi::Reference<Napi::Array> store_;
  std::unordered_map<const char*, uint32_t> index_;  // keyed by the literal's address
};

class Parser {
 public:
  // keep: where arrays used off the main thread are referenced until the job ends; null for
  // synchronous calls, whose arguments outlive the call anyway.
  Parser(Napi::Env env, Napi::Object opts, PropertyNames* names, std::vector<Napi::Reference<Napi::Value>>* keep)
      : env_(env), opts_(opts), names_(names), keep_(keep) {}

  Napi::Value Get(const char* key) { return Get(opts_, key); }
  Napi::Value Get(Napi::Object from, const char* key) { return from.Get(names_->Get(env_, key)); }

  size_t Size(const char* key) {
    Napi::Value v = Get(key);
    if (!v.IsNumber()) throw Napi::TypeError::New(env_, std::string(key) + " must be a number, got " + TypeName(v));
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 1 && d <= kMaxElements && d == std::floor(d))) {
      throw Napi::RangeError::New(env_, std::string(key) + " must be an integer in [1, 2147483647], got " + v.ToString().Utf8Value());
    }
    return static_cast<size_t>(d);
  }

  double Number(const char* key, double fallback, double lo, double hi) {
    Napi::Value v = Get(key);
    if (v.IsUndefined() || v.IsNull()) return fallback;
    if (!v.IsNumber()) throw Napi::TypeError::New(env_, std::string(key) + " must be a number, got " + TypeName(v));
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= lo && d <= hi)) {
      throw Napi::RangeError::New(env_, std::string(key) + " must be in [" + std::to_string(lo) + ", " +
                                            std::to_string(hi) + "], got " + v.ToString().Utf8Value());
    }
    return d;
  }

  template <class T>
  T* Array(Napi::Object from, const char* key, size_t expected, bool optional) {
    Napi::Value v = Get(from, key);
    if (optional && (v.IsUndefined() || v.IsNull())) return nullptr;
    constexpr napi_typedarray_type kType = std::is_same<T, float>::value    ? napi_float32_array
                                           : std::is_same<T, double>::value ? napi_float64_array
                                                                            : napi_int32_array;
    const char* type_name = kType == napi_float32_array   ? "Float32Array"
                            : kType == napi_float64_array ? "Float64Array"
                                                          : "Int32Array";
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kType) {
      throw Napi::TypeError::New(env_, std::string(key) + " must be a " + type_name + ", got " + TypeName(v));
    }
    auto arr = v.As<Napi::TypedArrayOf<T>>();
    if (arr.ElementLength() != expected) {
      throw Napi::RangeError::New(env_, std::string(key) + " must have " + std::to_string(expected) +
                                            " elements, got " + std::to_string(arr.ElementLength()));
    }
    if (arr.ArrayBuffer().IsDetached()) {
      throw Napi::TypeError::New(env_, std::string(key) + " refers to freed (disposed) memory");
    }
    if (keep_ != nullptr) keep_->push_back(Napi::Persistent(v));
    arrays_.push_back(arr);
    return arr.Data();
  }

  template <class T>
  T* Array(const char* key, size_t expected, bool optional = false) {
    return Array<T>(opts_, key, expected, optional);
  }

  void CheckFinite(const float* data, size_t n, const char* what) {
    // A float is NaN or infinite exactly when its exponent bits are all set; an integer OR over
    // the flags vectorizes, where a float test would not.
    uint32_t non_finite = 0;
    for (size_t i = 0; i < n; ++i) {
      uint32_t bits;
      std::memcpy(&bits, data + i, sizeof bits);
      non_finite |= (bits & 0x7f800000u) == 0x7f800000u;
    }
    if (non_finite != 0) {
      throw Napi::RangeError::New(env_, std::string(what) + " contains NaN or infinite values");
    }
  }

  void CheckRange(const int32_t* data, size_t n, int32_t hi, bool allow_ignore, const char* what) {
    for (size_t i = 0; i < n; ++i) {
      const int32_t v = data[i];
      if ((v < 0 || v >= hi) && !(allow_ignore && v == -1)) {
        throw Napi::RangeError::New(env_, std::string(what) + "[" + std::to_string(i) + "] = " + std::to_string(v) +
                                              " is outside [0, " + std::to_string(hi) + ")");
      }
    }
  }

  // Property reads can run JS (getters on a hand-made request) that frees an array read before;
  // checked once all arrays are in hand, so no pointer taken here can dangle.
  void CheckStillAttached() {
    for (Napi::TypedArray& arr : arrays_) {
      if (arr.ArrayBuffer().IsDetached()) throw Napi::TypeError::New(env_, "an array of the request was freed while it was read");
    }
  }

  static std::string TypeName(Napi::Value v) {
    if (v.IsUndefined()) return "undefined";
    if (v.IsNull()) return "null";
    if (v.IsTypedArray()) {
      switch (v.As<Napi::TypedArray>().TypedArrayType()) {
        case napi_float32_array: return "Float32Array";
        case napi_int32_array: return "Int32Array";
        case napi_float64_array: return "Float64Array";
        default: return "another typed array";
      }
    }
    if (v.IsNumber()) return "number";
    if (v.IsString()) return "string";
    if (v.IsArray()) return "Array";
    return "object";
  }

  Napi::Env env_;
  Napi::Object opts_;
  PropertyNames* names_;
  std::vector<Napi::Reference<Napi::Value>>* keep_;
  std::vector<Napi::TypedArray> arrays_;
};

size_t Product(Napi::Env env, std::initializer_list<size_t> sizes, const char* what) {
  double n = 1;
  for (size_t s : sizes) n *= static_cast<double>(s);
  if (n > kMaxElements) throw Napi::RangeError::New(env, std::string(what) + " would exceed 2^31-1 elements");
  return static_cast<size_t>(n);
}

Job ParseJob(Napi::Env env, JobKind kind, Napi::Value arg, PropertyNames* names,
             std::vector<Napi::Reference<Napi::Value>>* keep) {
  if (!arg.IsObject()) throw Napi::TypeError::New(env, "expected an options object");
  Parser p(env, arg.As<Napi::Object>(), names, keep);
  Job job;
  job.kind = kind;
  RnnShape& s = job.shape;
  s.input = p.Size("D");
  s.hidden = p.Size("H");
  s.output = p.Size("K");
  s.steps = p.Size("T");
  s.batch = p.Size("B");
  const size_t D = s.input, H = s.hidden, K = s.output, T = s.steps, B = s.batch;
  const size_t nU = Product(env, {H, D}, "U"), nW = Product(env, {H, H}, "W"), nV = Product(env, {K, H}, "V");
  const size_t rows = Product(env, {T, B}, "T*B");
  Product(env, {T, B, H}, "states");
  Product(env, {T, B, K}, "logits");

  float* U = p.Array<float>("U", nU);
  float* W = p.Array<float>("W", nW);
  float* b = p.Array<float>("b", H);
  float* V = p.Array<float>("V", nV);
  float* c = p.Array<float>("c", K);
  p.CheckFinite(U, nU, "U");
  p.CheckFinite(W, nW, "W");
  p.CheckFinite(b, H, "b");
  p.CheckFinite(V, nV, "V");
  p.CheckFinite(c, K, "c");
  job.params = {U, W, b, V, c};
  job.mutable_params = {U, W, b, V, c};

  job.batch.tokens = p.Array<int32_t>("tokens", rows, true);
  if (job.batch.tokens == nullptr) {
    const size_t n = Product(env, {T, B, D}, "dense inputs");
    job.batch.dense = p.Array<float>("dense", n);
    p.CheckFinite(job.batch.dense, n, "dense inputs");
  } else {
    p.CheckRange(job.batch.tokens, rows, static_cast<int32_t>(D), false, "tokens");
  }
  job.batch.h0 = p.Array<float>("h0", B * H, true);
  if (job.batch.h0 != nullptr) p.CheckFinite(job.batch.h0, B * H, "h0");
  job.hT = p.Array<float>("hT", B * H);

  if (kind == JobKind::kForward) {
    job.states = p.Array<float>("states", rows * H);
    job.logits = p.Array<float>("logits", rows * K);
    p.CheckStillAttached();
    return job;
  }
  const int32_t* targets = p.Array<int32_t>("targets", rows);
  p.CheckRange(targets, rows, static_cast<int32_t>(K), true, "targets");
  job.batch.targets = targets;
  job.capture.dst = p.Array<float>("hAt", B * H, true);
  if (job.capture.dst != nullptr) job.capture.step = static_cast<size_t>(p.Number("hAtStep", 0, 0, static_cast<double>(T - 1)));
  job.truncate = static_cast<size_t>(p.Number("truncate", 0, 0, kMaxElements));
  Napi::Value reduction = p.Get("reduction");
  if (reduction.IsString() && reduction.As<Napi::String>().Utf8Value() == "sum") {
    job.reduction = Reduction::kSum;
  } else if (!(reduction.IsUndefined() || (reduction.IsString() && reduction.As<Napi::String>().Utf8Value() == "mean"))) {
    throw Napi::TypeError::New(env, "reduction must be 'mean' or 'sum'");
  }

  if (kind == JobKind::kGradients) {
    job.grads = {p.Array<float>("gU", nU), p.Array<float>("gW", nW), p.Array<float>("gb", H),
                 p.Array<float>("gV", nV), p.Array<float>("gc", K), p.Array<float>("gh0", B * H, true)};
    p.CheckStillAttached();
    return job;
  }

  job.clip.max_norm = static_cast<float>(p.Number("clipNorm", 0, 0, 3.4e38));
  job.clip.max_value = static_cast<float>(p.Number("clipValue", 0, 0, 3.4e38));
  Napi::Value opt_value = p.Get("optimizer");
  if (!opt_value.IsObject()) throw Napi::TypeError::New(env, "optimizer must be an object");
  Napi::Object opt = opt_value.As<Napi::Object>();
  Parser po(env, opt, names, keep);
  Napi::Value kind_name = po.Get("kind");
  if (!kind_name.IsString() || !parse_optimizer_kind(kind_name.As<Napi::String>().Utf8Value().c_str(), &job.optimizer.kind)) {
    throw Napi::TypeError::New(env, "optimizer.kind must be one of sgd, momentum, nesterov, adagrad, rmsprop, adam");
  }
  OptimizerConfig& o = job.optimizer;
  o.lr = static_cast<float>(po.Number("lr", o.lr, 0, 3.4e38));
  o.momentum = static_cast<float>(po.Number("momentum", o.momentum, 0, 1));
  o.beta1 = static_cast<float>(po.Number("beta1", o.beta1, 0, 0.999999999));
  o.beta2 = static_cast<float>(po.Number("beta2", o.beta2, 0, 0.999999999));
  o.rho = static_cast<float>(po.Number("rho", o.rho, 0, 1));
  o.eps = static_cast<float>(po.Number("eps", o.eps, 0, 1));
  o.step = static_cast<int64_t>(po.Number("step", 1, 1, 9007199254740991.0));
  const int slots = optimizer_state_slots(o.kind);
  const size_t sizes[5] = {nU, nW, H, nV, K};
  static const char* kSlotNames[5][2] = {{"U0", "U1"}, {"W0", "W1"}, {"b0", "b1"}, {"V0", "V1"}, {"c0", "c1"}};
  Napi::Value state_value = p.Get("state");
  if (slots > 0 && !state_value.IsObject()) throw Napi::TypeError::New(env, "optimizer state must be an object");
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < slots; ++j)
      job.optimizer_state[i][j] = p.Array<float>(state_value.As<Napi::Object>(), kSlotNames[i][j], sizes[i], false);
  job.step_out = p.Array<double>("out", 3);
  p.CheckStillAttached();
  return job;
}

void RunJob(Job& job, RnnWorkspace& ws) {
  const kernels::KernelSet& ks = active_kernels();
  ThreadPool* pool = &ThreadPool::global();
  switch (job.kind) {
    case JobKind::kForward:
      rnn_forward(ks, pool, job.shape, job.params, job.batch, ws, job.states, job.logits, job.hT);
      break;
    case JobKind::kGradients:
      job.loss = rnn_loss_and_gradients(ks, pool, job.shape, job.params, job.batch, job.truncate,
                                        job.reduction, ws, job.grads, job.hT, job.capture);
      break;
    case JobKind::kTrainStep: {
      const TrainStepResult step = rnn_train_step(ks, pool, job.shape, job.mutable_params, job.batch, job.truncate,
                                                  job.reduction, job.clip, job.optimizer, job.optimizer_state, ws,
                                                  job.hT, job.capture);
      job.step_out[0] = step.loss;
      job.step_out[1] = step.grad_norm;
      job.step_out[2] = step.clipped ? 1.0 : 0.0;
      break;
    }
  }
}

// Numbers only: a result object would cost more than a small model's step. trainStep's results
// go into the caller's `out` array.
Napi::Value JobResult(Napi::Env env, const Job& job) {
  return job.kind == JobKind::kGradients ? Napi::Number::New(env, job.loss.loss) : env.Undefined();
}

Napi::Error NonFiniteError(Napi::Env env, const char* message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", "BPTT_NON_FINITE");
  return error;
}

// Owns one workspace; the TS layer keeps one engine per model so that concurrent jobs on
// different models never share scratch memory.
class Engine : public Napi::ObjectWrap<Engine> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {InstanceMethod<&Engine::Run<JobKind::kForward>>("forward"),
                        InstanceMethod<&Engine::Run<JobKind::kGradients>>("gradients"),
                        InstanceMethod<&Engine::Run<JobKind::kTrainStep>>("trainStep"),
                        InstanceMethod<&Engine::RunAsync<JobKind::kForward>>("forwardAsync"),
                        InstanceMethod<&Engine::RunAsync<JobKind::kGradients>>("gradientsAsync"),
                        InstanceMethod<&Engine::RunAsync<JobKind::kTrainStep>>("trainStepAsync"),
                        InstanceAccessor<&Engine::Busy>("busy")});
  }

  explicit Engine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Engine>(info) {}

 private:
  class Worker : public Napi::AsyncWorker {
   public:
    Worker(Napi::Env env, Engine* engine, Job job, std::vector<Napi::Reference<Napi::Value>> keep)
        : Napi::AsyncWorker(env, "bptt.job"), engine_(engine), job_(job), keep_(std::move(keep)),
          deferred_(Napi::Promise::Deferred::New(env)), self_(Napi::Persistent(engine->Value())) {}
    Napi::Promise Promise() { return deferred_.Promise(); }

   protected:
    void Execute() override {
      try {
        RunJob(job_, engine_->workspace_);
      } catch (const NonFiniteGradient& e) {
        non_finite_ = true;
        SetError(e.what());
      } catch (const std::exception& e) {
        SetError(e.what());
      }
    }
    void OnOK() override {
      engine_->busy_ = false;
      deferred_.Resolve(JobResult(Env(), job_));
    }
    void OnError(const Napi::Error& error) override {
      engine_->busy_ = false;
      deferred_.Reject(non_finite_ ? NonFiniteError(Env(), error.Message().c_str()).Value() : error.Value());
    }

   private:
    Engine* engine_;
    Job job_;
    std::vector<Napi::Reference<Napi::Value>> keep_;
    Napi::Promise::Deferred deferred_;
    Napi::ObjectReference self_;  // keeps the engine (and its workspace) alive while running
    bool non_finite_ = false;
  };

  void CheckIdle(Napi::Env env) {
    if (busy_) {
      Napi::Error error = Napi::Error::New(env, "this model is running an asynchronous job; await it first");
      error.Set("code", "BPTT_IN_USE");
      throw error;
    }
  }

  template <JobKind kKind>
  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckIdle(env);
    std::vector<Napi::Reference<Napi::Value>> keep;
    Job job = ParseJob(env, kKind, info[0], &names_, nullptr);
    try {
      RunJob(job, workspace_);
    } catch (const NonFiniteGradient& e) {
      throw NonFiniteError(env, e.what());
    } catch (const std::bad_alloc&) {
      throw Napi::RangeError::New(env, "out of memory for the workspace of this call");
    }
    return JobResult(env, job);
  }

  template <JobKind kKind>
  Napi::Value RunAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckIdle(env);
    std::vector<Napi::Reference<Napi::Value>> keep;
    Job job = ParseJob(env, kKind, info[0], &names_, &keep);
    auto* worker = new Worker(env, this, job, std::move(keep));
    Napi::Promise promise = worker->Promise();
    busy_ = true;
    worker->Queue();
    return promise;
  }

  Napi::Value Busy(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), busy_); }

  RnnWorkspace workspace_;
  PropertyNames names_;
  bool busy_ = false;
};

}  // namespace

void InitRnnBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("Engine", Engine::Define(env));
}

}  // namespace bptt
