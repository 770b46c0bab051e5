// JS glue for the recurrent layer engine (engine/layer.h): a LayerEngine object per layer spec,
// validated once in its constructor, with forward / backward (sync and async), and LayerRecord
// objects holding what a forward pass saved for backward. Every argument is checked again here
// (after the TS layer): a bad call from any caller ends in a JS exception.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "binding_args.h"
#include "bindings.h"
#include "engine/layer.h"
#include "thread_pool.h"

namespace bptt {
namespace {

using engine::ForwardRecord;
using engine::LayerSpec;
using namespace args;

// Marks objects made by LayerRecord's constructor, so a forged `this` or argument is refused.
constexpr napi_type_tag kRecordTag = {0x6270747472656364ULL, 0x9d1c3a7e52b04f11ULL};

class LayerRecord : public Napi::ObjectWrap<LayerRecord> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "LayerRecord",
                       {InstanceMethod<&LayerRecord::Dispose>("dispose"),
                        InstanceAccessor<&LayerRecord::Disposed>("disposed"),
                        InstanceAccessor<&LayerRecord::InUseValue>("inUse"),
                        InstanceAccessor<&LayerRecord::Bytes>("bytes")});
  }

  explicit LayerRecord(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LayerRecord>(info) {
    napi_type_tag_object(info.Env(), info.This(), &kRecordTag);
  }

  // The record behind a JS value, or a TypeError.
  static LayerRecord* From(Napi::Env env, Napi::Value v, const char* what) {
    bool tagged = false;
    if (!v.IsObject() || napi_check_object_type_tag(env, v, &kRecordTag, &tagged) != napi_ok || !tagged) {
      throw Napi::TypeError::New(env, std::string(what) + " must be a LayerRecord (the `saved` of a native layerForward), got " + Describe(v));
    }
    return Napi::ObjectWrap<LayerRecord>::Unwrap(v.As<Napi::Object>());
  }

  ForwardRecord* record() { return record_.get(); }
  bool disposed() const { return record_ == nullptr; }
  bool in_use = false;

  // Tells V8 how much native memory the record holds now (throws nothing: it also runs when a
  // job completes in an environment that is going away).
  void Report(napi_env env) noexcept {
    const int64_t now = record_ ? static_cast<int64_t>(record_->bytes()) : 0;
    int64_t total = 0;
    if (now != reported_) napi_adjust_external_memory(env, now - reported_, &total);
    reported_ = now;
  }

  void Finalize(Napi::Env env) override {
    record_.reset();
    Report(env);
  }

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&] {
      if (in_use) throw InUse("this saved forward pass is used by a running asynchronous job");
      record_.reset();
      Report(info.Env());
      return info.Env().Undefined();
    });
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&] { return Napi::Boolean::New(info.Env(), disposed()); });
  }
  Napi::Value InUseValue(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&] { return Napi::Boolean::New(info.Env(), in_use); });
  }
  Napi::Value Bytes(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&] { return Napi::Number::New(info.Env(), record_ ? static_cast<double>(record_->bytes()) : 0.0); });
  }

  std::unique_ptr<ForwardRecord> record_ = std::make_unique<ForwardRecord>();
  int64_t reported_ = 0;
};

// A validated forward call. Token ids and lengths are copies taken before their range check, so
// memory the caller shares with another thread can change numbers but never an index.
struct ForwardJob {
  const kernels::KernelSet* ks = nullptr;  // the environment's when the call was made
  engine::LayerWeights weights;
  engine::LayerInput input;
  engine::LayerOutputs out;
  OwnedIds ids;
  LayerRecord* target = nullptr;  // null: the engine's own record
  std::unique_ptr<Staging> stage;  // asynchronous jobs only
};

struct BackwardJob {
  const kernels::KernelSet* ks = nullptr;
  engine::LayerWeights weights;
  engine::LayerUpstream up;
  engine::LayerInputGrads input_grads;
  engine::LayerGrads grads;
  LayerRecord* source = nullptr;
  std::unique_ptr<Staging> stage;  // asynchronous jobs only
};

class LayerEngine : public Napi::ObjectWrap<LayerEngine> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "LayerEngine",
                       {InstanceMethod<&LayerEngine::Forward<false>>("forward"),
                        InstanceMethod<&LayerEngine::Forward<true>>("forwardAsync"),
                        InstanceMethod<&LayerEngine::Backward<false>>("backward"),
                        InstanceMethod<&LayerEngine::Backward<true>>("backwardAsync"),
                        InstanceAccessor<&LayerEngine::Busy>("busy")});
  }

  // new LayerEngine(cell, inputSize, hiddenSize, numLayers, bidirectional, dropout)
  explicit LayerEngine(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<LayerEngine>(info), spec_(ReadLayerSpec(info, 0, 6, "LayerEngine")), state_(&State(info.Env())) {}

 private:
  void CheckIdle() const {
    if (busy_) throw InUse("this layer engine is running an asynchronous job; await it first");
  }

  // forward(weights[], T, B, tokens, dense, lengths, h0, c0, training, seed, y, hT, cT, record)
  ForwardJob ParseForward(const Napi::CallbackInfo& info, bool staged) {
    Napi::Env env = info.Env();
    if (info.Length() != 14) throw Napi::TypeError::New(env, "forward expects 14 arguments, got " + std::to_string(info.Length()));
    const LayerSpec& s = spec_;
    ForwardJob job;
    job.ks = state_->kernels;
    if (staged) job.stage = std::make_unique<Staging>();
    Staging* stage = job.stage.get();
    job.weights.arrays = ParameterArrays<const float*>(env, *job.ks, info[0], s, "weights", true, stage);
    job.input = ReadLayerInput(info, *job.ks, 1, s, stage, job.ids);
    const size_t rows = job.input.steps * job.input.batch;
    const size_t out_n = rows * s.output_width(), state_n = s.layers * s.directions() * job.input.batch * s.hidden;
    const bool lstm = engine::cell_info(s.cell).has_cell_state;
    job.out.y = Out(stage, info[10], ArrayArg<float>(env, info[10], "y", out_n, false), out_n);
    job.out.hT = Out(stage, info[11], ArrayArg<float>(env, info[11], "hT", state_n, false), state_n);
    job.out.cT = lstm ? Out(stage, info[12], ArrayArg<float>(env, info[12], "cT", state_n, false), state_n) : nullptr;
    if (!info[13].IsUndefined() && !info[13].IsNull()) {
      job.target = LayerRecord::From(env, info[13], "record");
      if (job.target->in_use) throw InUse("this saved forward pass is used by a running asynchronous job");
      if (job.target->disposed()) throw Napi::TypeError::New(env, "record was disposed");
    }
    return job;
  }

  // backward(weights[], record, dy, dhT, dcT, truncate, dx, dh0, dc0, grads[])
  BackwardJob ParseBackward(const Napi::CallbackInfo& info, bool staged) {
    Napi::Env env = info.Env();
    if (info.Length() != 10) throw Napi::TypeError::New(env, "backward expects 10 arguments, got " + std::to_string(info.Length()));
    const LayerSpec& s = spec_;
    BackwardJob job;
    job.ks = state_->kernels;
    if (staged) job.stage = std::make_unique<Staging>();
    Staging* stage = job.stage.get();
    job.weights.arrays = ParameterArrays<const float*>(env, *job.ks, info[0], s, "weights", true, stage);
    job.source = LayerRecord::From(env, info[1], "saved");
    if (job.source->disposed()) throw Napi::TypeError::New(env, "saved was disposed");
    if (job.source->in_use) throw InUse("this saved forward pass is used by a running asynchronous job");
    const ForwardRecord& rec = *job.source->record();
    if (!rec.valid) throw Napi::TypeError::New(env, "saved holds no completed forward pass");
    if (!(rec.spec == s)) throw Napi::TypeError::New(env, "saved comes from a forward pass of another layer spec");
    const size_t T = rec.steps, B = rec.batch, H = s.hidden;
    const size_t out_n = T * B * s.output_width(), state_n = s.layers * s.directions() * B * H;
    const bool lstm = engine::cell_info(s.cell).has_cell_state;
    engine::LayerUpstream& up = job.up;
    const float* dy = ArrayArg<float>(env, info[2], "dy", out_n, false);
    CheckFinite(env, *job.ks, dy, out_n, "dy");
    up.dy = In(stage, dy, out_n);
    const float* dhT = ArrayArg<float>(env, info[3], "dhT", state_n, true);
    if (dhT) CheckFinite(env, *job.ks, dhT, state_n, "dhT");
    up.dhT = In(stage, dhT, state_n);
    if (!lstm && !info[4].IsUndefined() && !info[4].IsNull()) throw Napi::TypeError::New(env, "dcT is only for lstm cells");
    const float* dcT = ArrayArg<float>(env, info[4], "dcT", state_n, true);
    if (dcT) CheckFinite(env, *job.ks, dcT, state_n, "dcT");
    up.dcT = In(stage, dcT, state_n);
    up.truncate = CountArg(env, info[5], "truncate", 0, kMaxElements);
    engine::LayerInputGrads& ig = job.input_grads;
    if (rec.tokens) {
      if (!info[6].IsUndefined() && !info[6].IsNull()) throw Napi::TypeError::New(env, "dx must be null for token inputs");
    } else {
      ig.dx = Out(stage, info[6], ArrayArg<float>(env, info[6], "dx", T * B * s.input, false), T * B * s.input);
    }
    ig.dh0 = Out(stage, info[7], ArrayArg<float>(env, info[7], "dh0", state_n, false), state_n);
    ig.dc0 = lstm ? Out(stage, info[8], ArrayArg<float>(env, info[8], "dc0", state_n, false), state_n) : nullptr;
    job.grads.arrays = ParameterArrays<float*>(env, *job.ks, info[9], s, "grads", false, stage);
    return job;
  }

  void RunForward(ForwardJob& job) {
    ForwardRecord& rec = job.target ? *job.target->record() : own_record_;
    engine::layer_forward(*job.ks, &ThreadPool::global(), spec_, job.weights, job.input, workspace_, rec, job.out);
  }

  void RunBackward(BackwardJob& job) {
    engine::layer_backward(*job.ks, &ThreadPool::global(), job.weights, *job.source->record(), job.up, workspace_,
                           job.input_grads, job.grads);
  }

  template <bool kAsync>
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      CheckIdle();
      ForwardJob job = ParseForward(info, kAsync);
      if constexpr (kAsync) {
        return Start(info.Env(), std::move(job), info[13], job.target);
      } else {
        RunForward(job);
        if (job.target) job.target->Report(info.Env());
        return info.Env().Undefined();
      }
    });
  }

  template <bool kAsync>
  Napi::Value Backward(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      CheckIdle();
      BackwardJob job = ParseBackward(info, kAsync);
      if constexpr (kAsync) {
        return Start(info.Env(), std::move(job), info[1], job.source);
      } else {
        RunBackward(job);
        return info.Env().Undefined();
      }
    });
  }

  // Queues a parsed job; the engine is busy and the record in use until it ends.
  template <class Job>
  Napi::Value Start(Napi::Env env, Job job, Napi::Value record_value, LayerRecord* record) {
    std::unique_ptr<Staging> stage = std::move(job.stage);
    auto shared = std::make_shared<Job>(std::move(job));
    std::vector<Napi::Reference<Napi::Value>> keep;
    keep.push_back(Napi::Persistent(Napi::Value(Value())));
    if (record != nullptr) keep.push_back(Napi::Persistent(record_value));
    auto worker = std::make_unique<StagedWorker>(
        env, std::move(keep), std::move(stage),
        [this, shared] {
          if constexpr (std::is_same<Job, ForwardJob>::value) {
            RunForward(*shared);
          } else {
            RunBackward(*shared);
          }
        },
        [this, record](napi_env e) {
          busy_ = false;
          if (record != nullptr) {
            record->in_use = false;
            record->Report(e);
          }
        },
        nullptr);
    busy_ = true;
    if (record != nullptr) record->in_use = true;
    return StagedWorker::Start(env, std::move(worker));
  }

  Napi::Value Busy(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&] { return Napi::Boolean::New(info.Env(), busy_); });
  }

  LayerSpec spec_;
  EnvState* state_;
  engine::LayerWorkspace workspace_;
  ForwardRecord own_record_;
  bool busy_ = false;
};

}  // namespace

void InitLayerBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("LayerEngine", LayerEngine::Define(env));
  exports.Set("LayerRecord", LayerRecord::Define(env));
}

}  // namespace bptt
