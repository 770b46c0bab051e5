// JS glue for the RNN: argument parsing and validation (again, after the TS layer: a bad call
// from any caller must end in a JS exception, never in undefined behaviour), and the sync and
// async entry points. The math lives in rnn.cc.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "binding_args.h"
#include "bindings.h"
#include "async_job.h"
#include "napi_guard.h"
#include "rnn.h"
#include "thread_pool.h"

namespace bptt {
namespace {

using args::kMaxElements;
using args::Product;

enum class JobKind { kForward, kGradients, kTrainStep };

// A fully validated call: raw pointers into typed arrays the caller holds (an asynchronous job
// holds them through its Keep), and the kernels of the environment that made it.
struct Job {
  JobKind kind;
  const kernels::KernelSet* ks = nullptr;
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

// What an asynchronous job holds on to until it settles: references to its arrays, so the GC
// keeps them, and their ArrayBuffers' data pointers, so release() refuses to free them.
struct Keep {
  std::vector<Napi::Reference<Napi::Value>> refs;
  std::vector<const void*> buffers;
};

// The kernels index memory with token and target ids, so they read copies the engine owns: taken
// first, range-checked after, so a caller rewriting its arrays meanwhile (another thread through a
// SharedArrayBuffer, or JS while an asynchronous job runs) can change numbers but never an index.
// Reused from call to call: steady-state training allocates nothing.
struct IdCopies {
  std::vector<int32_t> tokens, targets;
};

// The call layout, shared with lib/backends/native.ts (nativeArgs): a native call takes its
// arguments by position, because for a small model the cost of a call is comparable to its
// arithmetic and positional arguments come in one Node-API call, where every property read of a
// request object is another. Argument 0 is a Float64Array of the scalars, indexed by Scalar; the
// others are typed arrays (or undefined/null where optional), in Arg order.
enum Scalar : size_t {
  kD, kH, kK, kT, kB, kTruncate, kReduction, kHAtStep, kClipNorm, kClipValue,
  kLr, kMomentum, kBeta1, kBeta2, kRho, kEps, kStep, kScalarCount
};
enum Arg : size_t {
  kScalars, kU, kW, kBias, kV, kC, kTokens, kDense, kH0, kHT, kStates, kLogits, kTargets, kHAt,
  kGradU, kGradW, kGradBias, kGradV, kGradC, kGradH0, kOut, kOptimizerKind, kState,
  kArgCount = kState + 10  // U0, U1, W0, W1, b0, b1, V0, V1, c0, c1
};

class ArgReader {
 public:
  // keep: what an asynchronous job holds until it settles; null for synchronous calls, whose
  // arguments outlive the call anyway.
  ArgReader(const Napi::CallbackInfo& info, const kernels::KernelSet& ks, Keep* keep)
      : env_(info.Env()), info_(info), ks_(ks), keep_(keep) {
    if (info.Length() < kArgCount) {
      throw Napi::TypeError::New(env_, "expected " + std::to_string(static_cast<size_t>(kArgCount)) +
                                           " arguments (see nativeArgs in lib/backends/native.ts), got " +
                                           std::to_string(info.Length()));
    }
    // Read once: sizes derived from them bound every index, so they must not change under us.
    std::memcpy(scalars_, View<double>(kScalars, "scalars", kScalarCount, false), sizeof scalars_);
  }

  size_t Size(Scalar index, const char* name) const {
    const double d = scalars_[index];
    if (!(d >= 1 && d <= kMaxElements && d == std::floor(d))) {
      throw Napi::RangeError::New(env_, std::string(name) + " must be an integer in [1, 2147483647], got " + Format(d));
    }
    return static_cast<size_t>(d);
  }

  // NaN means "not given" and yields the fallback.
  double Number(Scalar index, const char* name, double fallback, double lo, double hi) const {
    const double d = scalars_[index];
    if (std::isnan(d)) return fallback;
    if (!(d >= lo && d <= hi)) {
      throw Napi::RangeError::New(env_, std::string(name) + " must be in [" + Format(lo) + ", " + Format(hi) + "], got " + Format(d));
    }
    return d;
  }

  double Integer(Scalar index, const char* name, double fallback, double lo, double hi) const {
    const double d = Number(index, name, fallback, lo, hi);
    if (d != std::floor(d)) throw Napi::RangeError::New(env_, std::string(name) + " must be an integer, got " + Format(d));
    return d;
  }

  // A rate in [0, 1) whose float32 is below 1 too: Adam's betas, where 1 (which 0.99999999 rounds
  // to) makes the bias correction 1 / (1 - beta^t) infinite.
  float BelowOne(Scalar index, const char* name, float fallback) const {
    const double d = Number(index, name, fallback, 0, 1);
    if (!(static_cast<float>(d) < 1.0f)) {
      throw Napi::RangeError::New(env_, std::string(name) + " must be below 1 also in float32 (at most 0.99999994), got " + Format(d));
    }
    return static_cast<float>(d);
  }

  // A number in (0, hi] whose float32 is above 0 too: eps, a divisor's guard.
  float AboveZero(Scalar index, const char* name, float fallback, double hi) const {
    const double d = Number(index, name, fallback, 0, hi);
    if (!(static_cast<float>(d) > 0.0f)) {
      throw Napi::RangeError::New(env_, std::string(name) + " must be above 0 also in float32 (at least 1.4e-45), got " + Format(d));
    }
    return static_cast<float>(d);
  }

  // A scalar without a default: NaN (not given) is an error.
  double Required(Scalar index, const char* name, double lo, double hi) const {
    if (std::isnan(scalars_[index])) throw Napi::RangeError::New(env_, std::string(name) + " must be given, got NaN");
    return Number(index, name, 0, lo, hi);
  }

  // The data of a typed array argument of exactly `expected` elements (null when optional and
  // absent), held by an asynchronous job until it settles.
  template <class T>
  T* Array(size_t index, const char* name, size_t expected, bool optional) {
    napi_value buffer = nullptr;
    T* data = View<T>(index, name, expected, optional, &buffer);
    if (data != nullptr && keep_ != nullptr) {
      keep_->refs.push_back(Napi::Persistent(info_[index]));
      void* base = nullptr;
      size_t length = 0;
      // A SharedArrayBuffer has no ArrayBuffer info; release() never frees one anyway.
      if (napi_get_arraybuffer_info(env_, buffer, &base, &length) == napi_ok) keep_->buffers.push_back(base);
    }
    return data;
  }

  // A checked copy of n ids (tokens or targets: each in [0, hi), or -1 when allow_ignore) in
  // *copy, which the kernels then read instead of the caller's array (see IdCopies). Null when
  // optional and absent.
  const int32_t* Ids(size_t index, const char* name, size_t n, int32_t hi, bool allow_ignore, bool optional,
                     std::vector<int32_t>* copy) {
    const int32_t* ids = View<int32_t>(index, name, n, optional);
    if (ids == nullptr) return nullptr;
    copy->resize(n);
    std::memcpy(copy->data(), ids, n * sizeof(int32_t));
    for (size_t i = 0; i < n; ++i) {
      const int32_t v = (*copy)[i];
      if ((v < 0 || v >= hi) && !(allow_ignore && v == -1)) {
        throw Napi::RangeError::New(env_, std::string(name) + "[" + std::to_string(i) + "] = " + std::to_string(v) +
                                              " is outside [0, " + std::to_string(hi) + ")");
      }
    }
    return copy->data();
  }

  std::string String(size_t index) const {
    Napi::Value v = info_[index];
    return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  }

  void CheckFinite(const float* data, size_t n, const char* what) const { args::CheckFinite(env_, ks_, data, n, what); }

  Napi::Env env() const { return env_; }

 private:
  // The data of a typed array of type T and `expected` elements; its ArrayBuffer in *buffer.
  template <class T>
  T* View(size_t index, const char* name, size_t expected, bool optional, napi_value* buffer_out = nullptr) {
    return args::ArrayArg<T>(env_, info_[index], name, expected, optional, buffer_out);
  }

  static std::string Format(double d) {
    char text[32];
    std::snprintf(text, sizeof text, "%.17g", d);
    return text;
  }

  Napi::Env env_;
  const Napi::CallbackInfo& info_;
  const kernels::KernelSet& ks_;
  Keep* keep_;
  double scalars_[kScalarCount];
};


// Reads and validates a call. No JS runs while it does (positional arguments have no getters), so
// a pointer taken from an array stays valid for the whole parse.
Job ParseJob(const Napi::CallbackInfo& info, JobKind kind, const kernels::KernelSet& ks, IdCopies* ids, Keep* keep) {
  ArgReader p(info, ks, keep);
  Napi::Env env = p.env();
  Job job;
  job.kind = kind;
  job.ks = &ks;
  RnnShape& s = job.shape;
  s.input = p.Size(kD, "D");
  s.hidden = p.Size(kH, "H");
  s.output = p.Size(kK, "K");
  s.steps = p.Size(kT, "T");
  s.batch = p.Size(kB, "B");
  const size_t D = s.input, H = s.hidden, K = s.output, T = s.steps, B = s.batch;
  const size_t nU = Product(env, {H, D}, "U"), nW = Product(env, {H, H}, "W"), nV = Product(env, {K, H}, "V");
  const size_t rows = Product(env, {T, B}, "T*B");
  Product(env, {T, B, H}, "states");
  Product(env, {T, B, K}, "logits");

  float* U = p.Array<float>(kU, "U", nU, false);
  float* W = p.Array<float>(kW, "W", nW, false);
  float* b = p.Array<float>(kBias, "b", H, false);
  float* V = p.Array<float>(kV, "V", nV, false);
  float* c = p.Array<float>(kC, "c", K, false);
  p.CheckFinite(U, nU, "U");
  p.CheckFinite(W, nW, "W");
  p.CheckFinite(b, H, "b");
  p.CheckFinite(V, nV, "V");
  p.CheckFinite(c, K, "c");
  job.params = {U, W, b, V, c};
  job.mutable_params = {U, W, b, V, c};

  job.batch.tokens = p.Ids(kTokens, "tokens", rows, static_cast<int32_t>(D), false, true, &ids->tokens);
  if (job.batch.tokens == nullptr) {
    const size_t n = Product(env, {T, B, D}, "dense inputs");
    job.batch.dense = p.Array<float>(kDense, "dense", n, false);
    p.CheckFinite(job.batch.dense, n, "dense inputs");
  }
  job.batch.h0 = p.Array<float>(kH0, "h0", B * H, true);
  if (job.batch.h0 != nullptr) p.CheckFinite(job.batch.h0, B * H, "h0");
  job.hT = p.Array<float>(kHT, "hT", B * H, false);

  if (kind == JobKind::kForward) {
    job.states = p.Array<float>(kStates, "states", rows * H, false);
    job.logits = p.Array<float>(kLogits, "logits", rows * K, false);
    return job;
  }
  job.batch.targets = p.Ids(kTargets, "targets", rows, static_cast<int32_t>(K), true, false, &ids->targets);
  job.capture.dst = p.Array<float>(kHAt, "hAt", B * H, true);
  if (job.capture.dst != nullptr) job.capture.step = static_cast<size_t>(p.Integer(kHAtStep, "hAtStep", 0, 0, static_cast<double>(T - 1)));
  job.truncate = static_cast<size_t>(p.Integer(kTruncate, "truncate", 0, 0, kMaxElements));
  job.reduction = p.Integer(kReduction, "reduction (0 mean, 1 sum)", 0, 0, 1) == 1 ? Reduction::kSum : Reduction::kMean;

  if (kind == JobKind::kGradients) {
    job.grads = {p.Array<float>(kGradU, "gU", nU, false), p.Array<float>(kGradW, "gW", nW, false),
                 p.Array<float>(kGradBias, "gb", H, false), p.Array<float>(kGradV, "gV", nV, false),
                 p.Array<float>(kGradC, "gc", K, false), p.Array<float>(kGradH0, "gh0", B * H, true)};
    return job;
  }

  job.clip.max_norm = static_cast<float>(p.Number(kClipNorm, "clipNorm", 0, 0, 3.4e38));
  job.clip.max_value = static_cast<float>(p.Number(kClipValue, "clipValue", 0, 0, 3.4e38));
  if (!parse_optimizer_kind(p.String(kOptimizerKind).c_str(), &job.optimizer.kind)) {
    throw Napi::TypeError::New(env, "optimizer kind must be one of sgd, momentum, nesterov, adagrad, rmsprop, adam");
  }
  OptimizerConfig& o = job.optimizer;
  o.lr = static_cast<float>(p.Required(kLr, "lr", 0, 3.4e38));
  o.momentum = static_cast<float>(p.Number(kMomentum, "momentum", o.momentum, 0, 1));
  o.beta1 = p.BelowOne(kBeta1, "beta1", o.beta1);
  o.beta2 = p.BelowOne(kBeta2, "beta2", o.beta2);
  o.rho = static_cast<float>(p.Number(kRho, "rho", o.rho, 0, 1));
  o.eps = p.AboveZero(kEps, "eps", o.eps, 1);
  o.step = static_cast<int64_t>(p.Integer(kStep, "step", 1, 1, 9007199254740991.0));
  const int slots = optimizer_state_slots(o.kind);
  const size_t sizes[5] = {nU, nW, H, nV, K};
  static const char* kSlotNames[5][2] = {{"U0", "U1"}, {"W0", "W1"}, {"b0", "b1"}, {"V0", "V1"}, {"c0", "c1"}};
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < slots; ++j)
      job.optimizer_state[i][j] = p.Array<float>(kState + 2 * i + j, kSlotNames[i][j], sizes[i], false);
  job.step_out = p.Array<double>(kOut, "out", 3, false);
  return job;
}

void RunJob(Job& job, RnnWorkspace& ws) {
  const kernels::KernelSet& ks = *job.ks;
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
// go into the caller's `out` array. Null only when the environment cannot make a value.
napi_value JobResult(napi_env env, const Job& job) {
  napi_value result = nullptr;
  if (job.kind == JobKind::kGradients) {
    napi_create_double(env, job.loss.loss, &result);
  } else {
    napi_get_undefined(env, &result);
  }
  return result;
}

// Owns one workspace and the id copies; the TS layer keeps one engine per model so that
// concurrent jobs on different models never share scratch memory. An engine belongs to the
// environment that made it, and runs one call at a time (busy while an asynchronous job runs).
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
                        InstanceMethod<&Engine::Release>("release"),
                        InstanceAccessor<&Engine::Busy>("busy")});
  }

  explicit Engine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Engine>(info), state_(&State(info.Env())) {}

 private:
  void CheckIdle() const {
    if (busy_) throw InUse("this model is running an asynchronous job; await it first");
  }

  // Marks the engine and the job's ArrayBuffers as in use until EndJob.
  void BeginJob(const std::vector<const void*>& buffers) {
    busy_ = true;
    for (const void* buffer : buffers) ++state_->busy_buffers[buffer];
  }

  void EndJob(const std::vector<const void*>& buffers) noexcept {
    busy_ = false;
    for (const void* buffer : buffers) {
      auto it = state_->busy_buffers.find(buffer);
      if (it != state_->busy_buffers.end() && --it->second == 0) state_->busy_buffers.erase(it);
    }
  }

  template <JobKind kKind>
  Napi::Value Run(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&] {
      CheckIdle();
      Job job = ParseJob(info, kKind, *state_->kernels, &ids_, nullptr);
      RunJob(job, workspace_);
      return Napi::Value(info.Env(), JobResult(info.Env(), job));
    });
  }

  template <JobKind kKind>
  Napi::Value RunAsync(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&] {
      CheckIdle();
      Keep keep;
      auto job = std::make_shared<Job>(ParseJob(info, kKind, *state_->kernels, &ids_, &keep));
      keep.refs.push_back(Napi::Persistent(Napi::Value(Value())));  // the engine and its workspace, until the job ends
      auto buffers = std::make_shared<std::vector<const void*>>(std::move(keep.buffers));
      auto worker = std::make_unique<StagedWorker>(
          info.Env(), std::move(keep.refs), nullptr, [this, job] { RunJob(*job, workspace_); },
          [this, buffers](napi_env) { EndJob(*buffers); }, [job](napi_env env) { return JobResult(env, *job); });
      BeginJob(*buffers);
      return StagedWorker::Start(info.Env(), std::move(worker));
    });
  }

  Napi::Value Busy(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&] { return Napi::Boolean::New(info.Env(), busy_); });
  }

  // Frees the scratch memory now (RNN.dispose); a later call allocates it again.
  Napi::Value Release(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&] {
      CheckIdle();
      workspace_ = RnnWorkspace();
      return info.Env().Undefined();
    });
  }

  EnvState* state_;
  RnnWorkspace workspace_;
  IdCopies ids_;
  bool busy_ = false;
};

}  // namespace

void InitRnnBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("Engine", Engine::Define(env));
}

}  // namespace bptt
