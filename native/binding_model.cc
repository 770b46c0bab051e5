// JS glue for recurrent models (model.h): a ModelEngine per model shape and head, validated once in
// its constructor, with forward, loss-and-gradients, the training step and the head's output
// gradients, sync and async. Parameters come as one Array: the recurrent stack's in PyTorch's
// order, then fc.weight and fc.bias. Targets come as the head takes them (heads.h HeadSpec): class
// ids (Int32Array) or values (Float32Array), copied and checked before anything runs.
#include <array>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "binding_args.h"
#include "bindings.h"
#include "model.h"
#include "thread_pool.h"

namespace bptt {
namespace {

using namespace args;
using engine::LayerSpec;

// The states a call returns, at info[first ..]: hT, cT | null, hAt | null, cAt | null, step.
model::ModelStates ReadStates(const Napi::CallbackInfo& info, size_t first, const LayerSpec& s, const engine::LayerInput& in,
                              Staging* stage) {
  Napi::Env env = info.Env();
  const size_t state_n = s.layers * s.directions() * in.batch * s.hidden;
  const bool lstm = engine::cell_info(s.cell).has_cell_state;
  model::ModelStates st;
  st.hT = Out(stage, info[first], ArrayArg<float>(env, info[first], "hT", state_n, false), state_n);
  if (lstm) st.cT = Out(stage, info[first + 1], ArrayArg<float>(env, info[first + 1], "cT", state_n, false), state_n);
  const Napi::Value h_at = info[first + 2];
  if (!h_at.IsUndefined() && !h_at.IsNull()) {
    if (s.bidirectional) throw Napi::TypeError::New(env, "the state at a step is only defined for unidirectional models");
    if (in.lengths != nullptr) throw Napi::TypeError::New(env, "the state at a step is only defined without lengths");
    st.h_at = Out(stage, h_at, ArrayArg<float>(env, h_at, "hAt", state_n, false), state_n);
    if (lstm) st.c_at = Out(stage, info[first + 3], ArrayArg<float>(env, info[first + 3], "cAt", state_n, false), state_n);
    st.capture_step = CountArg(env, info[first + 4], "the step of hAt", 0, static_cast<double>(in.steps - 1));
  }
  return st;
}

struct ModelJob {
  enum class Kind { kForward, kGradients, kTrainStep, kOutputGradients } kind;
  const kernels::KernelSet* ks = nullptr;  // the environment's when the call was made
  engine::LayerWeights weights;
  model::HeadWeights head;
  engine::LayerInput input;
  OwnedIds ids;
  model::ModelStates states;
  float* logits = nullptr;  // forward: the head's outputs
  float* outputs = nullptr;  // forward: the top layer's outputs, or null
  std::vector<int32_t> classes;  // class targets (a copy: ids index the logits)
  std::vector<float> values;     // regression targets (a copy, checked finite)
  float* dy = nullptr;           // outputGradients: [T, B, dirs*H]
  size_t truncate = 0;
  Reduction reduction = Reduction::kMean;
  engine::LayerGrads grads;
  model::HeadGrads head_grads;
  engine::LayerInputGrads input_grads;
  std::vector<float*> params;  // trainStep: written by the update
  ClipConfig clip;
  OptimizerConfig optimizer;
  std::vector<std::array<float*, 2>> state;
  double* step_out = nullptr;  // trainStep: loss, gradNorm, clipped (1 or 0), written on the JS thread
  double loss = 0, grad_norm = 0;
  bool clipped = false;
  std::unique_ptr<Staging> stage;
};

class ModelEngine : public Napi::ObjectWrap<ModelEngine> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ModelEngine",
                       {InstanceMethod<&ModelEngine::Call<ModelJob::Kind::kForward, false>>("forward"),
                        InstanceMethod<&ModelEngine::Call<ModelJob::Kind::kForward, true>>("forwardAsync"),
                        InstanceMethod<&ModelEngine::Call<ModelJob::Kind::kGradients, false>>("gradients"),
                        InstanceMethod<&ModelEngine::Call<ModelJob::Kind::kGradients, true>>("gradientsAsync"),
                        InstanceMethod<&ModelEngine::Call<ModelJob::Kind::kTrainStep, false>>("trainStep"),
                        InstanceMethod<&ModelEngine::Call<ModelJob::Kind::kTrainStep, true>>("trainStepAsync"),
                        InstanceMethod<&ModelEngine::Call<ModelJob::Kind::kOutputGradients, false>>("outputGradients"),
                        InstanceMethod<&ModelEngine::Call<ModelJob::Kind::kOutputGradients, true>>("outputGradientsAsync"),
                        InstanceMethod<&ModelEngine::Release>("release"),
                        InstanceAccessor<&ModelEngine::Busy>("busy")});
  }

  // new ModelEngine(cell, inputSize, hiddenSize, numLayers, bidirectional, dropout, outputSize,
  //                 head ('tokens' | 'classify' | 'regress'), pool ('every' | 'last' | 'mean'),
  //                 loss ('cross-entropy' | 'mse' | 'huber'), delta, classWeights Float32Array [K] | null)
  explicit ModelEngine(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<ModelEngine>(info), spec_(ReadLayerSpec(info, 0, 12, "ModelEngine")), state_(&State(info.Env())) {
    Napi::Env env = info.Env();
    classes_ = CountArg(env, info[6], "outputSize", 1, kMaxElements);
    Product(env, {classes_, spec_.output_width()}, "fc.weight");
    head_ = ReadHead(info, 7, classes_);
  }

 private:
  enum class Use { kInput, kOutput, kUpdated };

  // The head at info[first ..]: kind, pool, loss, delta, classWeights | null; combinations checked.
  static HeadSpec ReadHead(const Napi::CallbackInfo& info, size_t first, size_t K) {
    Napi::Env env = info.Env();
    auto text = [&](size_t i) { return info[first + i].IsString() ? info[first + i].As<Napi::String>().Utf8Value() : std::string(); };
    const std::string kind = text(0), pool = text(1), loss = text(2);
    HeadSpec head;
    head.outputs = K;
    const bool per_step = pool == "every";
    if (kind == "tokens" && per_step && loss == "cross-entropy") {
      head.kind = HeadKind::kTokens;
    } else if (kind == "classify" && (pool == "last" || pool == "mean") && loss == "cross-entropy") {
      head.kind = HeadKind::kClassify;
      head.pool = pool == "last" ? Pool::kLast : Pool::kMean;
    } else if (kind == "regress" && (per_step || pool == "last") && (loss == "mse" || loss == "huber")) {
      head.kind = HeadKind::kRegress;
      head.pool = per_step ? Pool::kEvery : Pool::kLast;
      head.loss = loss == "mse" ? RegressionLoss::kMse : RegressionLoss::kHuber;
    } else {
      throw Napi::TypeError::New(env, "head must be tokens/every/cross-entropy, classify/last|mean/cross-entropy or regress/every|last/mse|huber, got " +
                                          kind + "/" + pool + "/" + loss);
    }
    const double delta = info[first + 3].IsNumber() ? info[first + 3].As<Napi::Number>().DoubleValue() : NAN;
    if (!(delta > 0 && delta <= 3.4e38)) throw Napi::RangeError::New(env, "delta must be a number in (0, 3.4e38], got " + Describe(info[first + 3]));
    head.delta = static_cast<float>(delta);
    const float* weights = ArrayArg<float>(env, info[first + 4], "classWeights", K, true);
    if (weights != nullptr) {
      if (head.kind != HeadKind::kClassify) throw Napi::TypeError::New(env, "classWeights are for the classify head");
      for (size_t k = 0; k < K; ++k) {
        if (!(weights[k] >= 0 && std::isfinite(weights[k]))) {
          throw Napi::RangeError::New(env, "classWeights[" + std::to_string(k) + "] must be finite and >= 0, got " + std::to_string(weights[k]));
        }
      }
      head.class_weights.assign(weights, weights + K);
    }
    return head;
  }

  // The call's targets at info[i], copied: class ids in [0, K) or -1, or finite values.
  void ReadTargets(Napi::Env env, Napi::Value v, const engine::LayerInput& in, ModelJob& job) const {
    const size_t n = Product(env, {head_.target_count(in.steps, in.batch)}, "targets");
    if (!head_.classifies()) {
      const float* values = ArrayArg<float>(env, v, "targets", n, false);
      job.values.assign(values, values + n);
      CheckFinite(env, *job.ks, job.values.data(), n, "targets");
      return;
    }
    const int32_t* classes = ArrayArg<int32_t>(env, v, "targets", n, false);
    job.classes.assign(classes, classes + n);
    for (size_t r = 0; r < n; ++r) {
      const int32_t t = job.classes[r];
      if (t != -1 && (t < 0 || static_cast<size_t>(t) >= classes_)) {
        throw Napi::RangeError::New(env, "targets[" + std::to_string(r) + "] = " + std::to_string(t) + " is outside [0, " +
                                             std::to_string(classes_) + ") and is not -1 (ignored)");
      }
    }
  }

  model::HeadTargets Targets(const ModelJob& job) const { return {job.classes.data(), job.values.data()}; }

  size_t ParameterSize(size_t p) const {
    const size_t count = spec_.parameter_count();
    return p < count ? spec_.parameter_size(p) : p == count ? classes_ * spec_.output_width() : classes_;
  }

  std::string ParameterName(size_t p) const {
    const size_t count = spec_.parameter_count();
    return p < count ? "rnn." + spec_.parameter_name(p) : p == count ? "fc.weight" : "fc.bias";
  }

  // The parameters (or arrays shaped like them): the stack's then fc.weight, fc.bias. What the
  // call reads is checked finite.
  void ReadParameters(Napi::Env env, const kernels::KernelSet& ks, Napi::Value v, Use use, Staging* stage,
                      std::vector<float*>* out) const {
    const size_t count = spec_.parameter_count();
    if (!v.IsArray() || v.As<Napi::Array>().Length() != count + 2) {
      throw Napi::TypeError::New(env, std::string(use == Use::kOutput ? "gradients" : "parameters") + " must be an Array of " +
                                          std::to_string(count + 2) + " Float32Arrays, got " + Describe(v));
    }
    Napi::Array list = v.As<Napi::Array>();
    out->resize(count + 2);
    for (size_t p = 0; p < count + 2; ++p) {
      const size_t n = ParameterSize(p);
      const std::string name = ParameterName(p);
      const Napi::Value array = list.Get(static_cast<uint32_t>(p));
      float* data = ArrayArg<float>(env, array, name, n, false);
      if (use != Use::kOutput) CheckFinite(env, ks, data, n, name);
      switch (use) {
        case Use::kInput: (*out)[p] = const_cast<float*>(In(stage, data, n)); break;
        case Use::kOutput: (*out)[p] = Out(stage, array, data, n); break;
        case Use::kUpdated: (*out)[p] = stage ? stage->InOut(array, data, n) : data; break;
      }
    }
  }

  // forward(params, T, B, tokens, dense, lengths, h0, c0, training, seed, logits, outputs | null,
  //         hT, cT, hAt, cAt, step)
  // gradients(params, T, B, tokens, dense, lengths, h0, c0, training, seed, targets, truncate,
  //           reduction (0 mean, 1 sum), grads, dh0 | null, dc0 | null, hT, cT, hAt, cAt, step)
  // trainStep(params, T, B, tokens, dense, lengths, h0, c0, training, seed, targets, truncate,
  //           reduction, hT, cT, hAt, cAt, step, clipNorm, clipValue, optimizer kind,
  //           hyperparameters Float64Array [lr, momentum, beta1, beta2, rho, eps, step],
  //           state (Array: each parameter's slots in order), out Float64Array [3])
  // outputGradients(params, T, B, tokens, dense, lengths, h0, c0, training, seed, targets,
  //                 reduction, dy)
  // logits has head rows x K elements (T*B per step, B pooled); targets are the head's.
  ModelJob Parse(const Napi::CallbackInfo& info, ModelJob::Kind kind, bool staged) {
    Napi::Env env = info.Env();
    const size_t expected = kind == ModelJob::Kind::kForward ? 17 : kind == ModelJob::Kind::kGradients ? 21 : kind == ModelJob::Kind::kTrainStep ? 24 : 13;
    if (info.Length() != expected) {
      throw Napi::TypeError::New(env, "expected " + std::to_string(expected) + " arguments, got " + std::to_string(info.Length()));
    }
    ModelJob job;
    job.kind = kind;
    job.ks = state_->kernels;
    const kernels::KernelSet& ks = *job.ks;
    if (staged) job.stage = std::make_unique<Staging>();
    Staging* stage = job.stage.get();
    std::vector<float*> params;
    ReadParameters(env, ks, info[0], kind == ModelJob::Kind::kTrainStep ? Use::kUpdated : Use::kInput, stage, &params);
    const size_t count = spec_.parameter_count();
    job.weights.arrays.assign(params.begin(), params.begin() + count);
    job.head = {params[count], params[count + 1]};
    job.input = ReadLayerInput(info, ks, 1, spec_, stage, job.ids);
    const size_t rows = job.input.steps * job.input.batch;
    const size_t state_n = spec_.layers * spec_.directions() * job.input.batch * spec_.hidden;
    const bool lstm = engine::cell_info(spec_.cell).has_cell_state;
    const size_t n_logits = Product(env, {head_.rows(job.input.steps, job.input.batch), classes_}, "logits");
    if (kind == ModelJob::Kind::kForward) {
      job.logits = Out(stage, info[10], ArrayArg<float>(env, info[10], "logits", n_logits, false), n_logits);
      const size_t n_out = rows * spec_.output_width();
      job.outputs = Out(stage, info[11], ArrayArg<float>(env, info[11], "outputs", n_out, true), n_out);
      job.states = ReadStates(info, 12, spec_, job.input, stage);
      return job;
    }
    ReadTargets(env, info[10], job.input, job);
    if (kind == ModelJob::Kind::kOutputGradients) {
      job.reduction = CountArg(env, info[11], "reduction (0 mean, 1 sum)", 0, 1) == 1 ? Reduction::kSum : Reduction::kMean;
      const size_t n_dy = rows * spec_.output_width();
      job.dy = Out(stage, info[12], ArrayArg<float>(env, info[12], "dy", n_dy, false), n_dy);
      return job;
    }
    job.truncate = CountArg(env, info[11], "truncate", 0, kMaxElements);
    job.reduction = CountArg(env, info[12], "reduction (0 mean, 1 sum)", 0, 1) == 1 ? Reduction::kSum : Reduction::kMean;
    if (kind == ModelJob::Kind::kTrainStep) {
      job.params = params;
      job.states = ReadStates(info, 13, spec_, job.input, stage);
      ReadTrainStep(info, stage, job);
      return job;
    }
    std::vector<float*> grads;
    ReadParameters(env, ks, info[13], Use::kOutput, stage, &grads);
    job.grads.arrays.assign(grads.begin(), grads.begin() + count);
    job.head_grads = {grads[count], grads[count + 1]};
    job.input_grads.dh0 = Out(stage, info[14], ArrayArg<float>(env, info[14], "dh0", state_n, true), state_n);
    if (lstm) job.input_grads.dc0 = Out(stage, info[15], ArrayArg<float>(env, info[15], "dc0", state_n, true), state_n);
    job.states = ReadStates(info, 16, spec_, job.input, stage);
    return job;
  }

  // info[18 ..]: clipNorm, clipValue, optimizer kind, hyperparameters, state, out.
  void ReadTrainStep(const Napi::CallbackInfo& info, Staging* stage, ModelJob& job) const {
    Napi::Env env = info.Env();
    auto number = [&](size_t i, const char* name) {
      const double d = info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= 0 && d <= 3.4e38)) throw Napi::RangeError::New(env, std::string(name) + " must be a number in [0, 3.4e38], got " + Describe(info[i]));
      return static_cast<float>(d);
    };
    job.clip.max_norm = number(18, "clipNorm");
    job.clip.max_value = number(19, "clipValue");
    const std::string kind = info[20].IsString() ? info[20].As<Napi::String>().Utf8Value() : std::string();
    OptimizerConfig& o = job.optimizer;
    if (!parse_optimizer_kind(kind.c_str(), &o.kind)) {
      throw Napi::TypeError::New(env, "optimizer kind must be one of sgd, momentum, nesterov, adagrad, rmsprop, adam, got " + Describe(info[20]));
    }
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    if (napi_get_typedarray_info(env, info[21], &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_float64_array || length != 7) {
      throw Napi::TypeError::New(env, "hyperparameters must be a Float64Array [lr, momentum, beta1, beta2, rho, eps, step]");
    }
    const double* h = static_cast<const double*>(data);
    try {
      set_optimizer_hyperparameters(h, &o);
    } catch (const std::invalid_argument& e) {
      throw Napi::RangeError::New(env, e.what());
    }
    const int slots = optimizer_state_slots(o.kind);
    const size_t count = spec_.parameter_count() + 2;
    if (!info[22].IsArray() || info[22].As<Napi::Array>().Length() != count * static_cast<size_t>(slots)) {
      throw Napi::TypeError::New(env, "optimizer state must be an Array of " + std::to_string(count * slots) + " Float32Arrays (" +
                                          std::to_string(slots) + " per parameter), got " + Describe(info[22]));
    }
    Napi::Array list = info[22].As<Napi::Array>();
    job.state.assign(count, {nullptr, nullptr});
    for (size_t p = 0; p < count; ++p)
      for (int j = 0; j < slots; ++j) {
        const Napi::Value array = list.Get(static_cast<uint32_t>(p * slots + j));
        const size_t n = ParameterSize(p);
        const std::string name = "optimizer state " + std::to_string(j) + " of " + ParameterName(p);
        float* state = ArrayArg<float>(env, array, name, n, false);
        CheckFinite(env, *job.ks, state, n, name);
        job.state[p][j] = stage ? stage->InOut(array, state, n) : state;
      }
    if (napi_get_typedarray_info(env, info[23], &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_float64_array || length != 3) {
      throw Napi::TypeError::New(env, "out must be a Float64Array [3]");
    }
    job.step_out = static_cast<double*>(data);
  }

  void Run(ModelJob& job) {
    const kernels::KernelSet& ks = *job.ks;
    ThreadPool* pool = &ThreadPool::global();
    if (job.kind == ModelJob::Kind::kForward) {
      model::model_forward(ks, pool, spec_, job.weights, head_, job.head, job.input, workspace_, job.logits, job.states);
      if (job.outputs != nullptr) {
        const size_t n = job.input.steps * job.input.batch * spec_.output_width();
        std::memcpy(job.outputs, workspace_.record.outputs[spec_.layers - 1].get<float>(), n * sizeof(float));
      }
      return;
    }
    if (job.kind == ModelJob::Kind::kTrainStep) {
      const TrainStepResult r = model::model_train_step(ks, pool, spec_, head_, job.params, job.input, Targets(job), job.truncate,
                                                        job.reduction, job.clip, job.optimizer, job.state, workspace_,
                                                        job.states);
      job.loss = r.loss;
      job.grad_norm = r.grad_norm;
      job.clipped = r.clipped;
      return;
    }
    if (job.kind == ModelJob::Kind::kOutputGradients) {
      job.loss = model::model_output_gradients(ks, pool, spec_, job.weights, head_, job.head, job.input, Targets(job),
                                               job.reduction, workspace_, job.dy)
                     .loss;
      return;
    }
    job.loss = model::model_loss_and_gradients(ks, pool, spec_, job.weights, head_, job.head, job.input, Targets(job),
                                               job.truncate, job.reduction, workspace_, job.grads, job.head_grads,
                                               job.input_grads, job.states)
                   .loss;
  }

  // The call's value: the loss for gradients and outputGradients; trainStep writes loss, gradNorm and clipped into its
  // `out` instead. Throws nothing (it also runs as an asynchronous job completes).
  template <ModelJob::Kind kKind>
  static napi_value Result(napi_env env, const ModelJob& job) noexcept {
    if (job.step_out != nullptr) {
      job.step_out[0] = job.loss;
      job.step_out[1] = job.grad_norm;
      job.step_out[2] = job.clipped ? 1.0 : 0.0;
    }
    napi_value value = nullptr;
    if (kKind == ModelJob::Kind::kGradients || kKind == ModelJob::Kind::kOutputGradients) {
      napi_create_double(env, job.loss, &value);
    } else {
      napi_get_undefined(env, &value);
    }
    return value;
  }

  template <ModelJob::Kind kKind, bool kAsync>
  Napi::Value Call(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      if (busy_) throw InUse("this model is running an asynchronous job; await it first");
      ModelJob job = Parse(info, kKind, kAsync);
      if constexpr (!kAsync) {
        Run(job);
        return Napi::Value(info.Env(), Result<kKind>(info.Env(), job));
      } else {
        std::unique_ptr<Staging> stage = std::move(job.stage);
        auto shared = std::make_shared<ModelJob>(std::move(job));
        // trainStep's `out` is written when the job ends, so it stays alive until then.
        std::vector<Napi::Reference<Napi::Value>> keep;
        keep.push_back(Napi::Persistent(Napi::Value(Value())));
        if (kKind == ModelJob::Kind::kTrainStep) keep.push_back(Napi::Persistent(info[info.Length() - 1]));
        auto worker = std::make_unique<StagedWorker>(
            info.Env(), std::move(keep), std::move(stage),
            [this, shared] { Run(*shared); }, [this](napi_env) { busy_ = false; },
            [shared](napi_env e) { return Result<kKind>(e, *shared); });
        busy_ = true;
        return StagedWorker::Start(info.Env(), std::move(worker));
      }
    });
  }

  Napi::Value Busy(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&] { return Napi::Boolean::New(info.Env(), busy_); });
  }

  // Frees the scratch memory now (RNN.dispose); a later call allocates it again.
  Napi::Value Release(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&] {
      if (busy_) throw InUse("this model is running an asynchronous job; await it first");
      workspace_ = model::ModelWorkspace();
      return info.Env().Undefined();
    });
  }

  LayerSpec spec_;
  EnvState* state_;
  size_t classes_ = 0;
  HeadSpec head_;
  model::ModelWorkspace workspace_;
  bool busy_ = false;
};

}  // namespace

void InitModelBindings(Napi::Env env, Napi::Object exports) { exports.Set("ModelEngine", ModelEngine::Define(env)); }

}  // namespace bptt
