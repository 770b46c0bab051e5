// JS glue for the gradient diagnostics (engine/layer.h, layer_source_norms): one entry point,
// synchronous and asynchronous, that runs the stack forward on the given weights and batch (no
// dropout unless asked) and returns, for every layer-direction, source t and step s, the squared
// norm of dL_t/dh_s summed over the batch. Every argument is checked here again (after the TS
// layer): a bad call from any caller ends in a JS exception.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "async_job.h"
#include "binding_args.h"
#include "bindings.h"
#include "engine/diagnostics.h"
#include "engine/layer.h"
#include "napi_guard.h"
#include "thread_pool.h"

namespace bptt {
namespace {

using engine::LayerSpec;
using namespace args;

// Where the sources come from: the gradient of the top layer's output (each step a source),
// given probes per layer-direction (Jacobian products), or the H basis vectors as probes.
enum class SourceKind { kOutputGradient, kProbes, kBasis };

struct SourceNormsJob {
  const kernels::KernelSet* ks = nullptr;
  LayerSpec spec;
  engine::LayerWeights weights;
  engine::LayerInput input;
  OwnedIds ids;
  SourceKind kind = SourceKind::kOutputGradient;
  const float* entries = nullptr;  // dy [T, B, dirs*H] or probes [P, L*dirs, T, B, H]
  size_t probe_count = 1;          // P (H for the basis)
  std::unique_ptr<Staging> stage;  // asynchronous jobs only
  std::vector<double> norms;       // [P, L*dirs, T, T]
};

// sourceGradientNorms(cell, inputSize, hiddenSize, numLayers, bidirectional, dropout, weights[],
//                     T, B, tokens, dense, lengths, h0, c0, training, seed, kind, entries, probes)
// kind: 'output' (entries = dy), 'probes' (entries = P probe sets, P = probes), 'basis'.
constexpr size_t kArgCount = 19;

SourceNormsJob Parse(const Napi::CallbackInfo& info, bool staged) {
  Napi::Env env = info.Env();
  SourceNormsJob job;
  job.spec = ReadLayerSpec(info, 0, kArgCount, "sourceGradientNorms");
  const LayerSpec& s = job.spec;
  job.ks = State(env).kernels;
  if (staged) job.stage = std::make_unique<Staging>();
  Staging* stage = job.stage.get();
  job.weights.arrays = ParameterArrays<const float*>(env, *job.ks, info[6], s, "weights", true, stage);
  job.input = ReadLayerInput(info, *job.ks, 7, s, stage, job.ids);
  const size_t T = job.input.steps, B = job.input.batch, H = s.hidden, states = s.layers * s.directions();
  if (!info[16].IsString()) throw Napi::TypeError::New(env, "kind must be 'output', 'probes' or 'basis', got " + Describe(info[16]));
  const std::string kind = info[16].As<Napi::String>().Utf8Value();
  const size_t per_set = Product(env, {states, T, T}, "the norms of one set of sources");
  if (kind == "output") {
    const size_t n = Product(env, {T, B, s.output_width()}, "dy");
    const float* dy = ArrayArg<float>(env, info[17], "dy", n, false);
    CheckFinite(env, *job.ks, dy, n, "dy");
    job.entries = In(stage, dy, n);
  } else if (kind == "probes") {
    job.kind = SourceKind::kProbes;
    job.probe_count = CountArg(env, info[18], "probes", 1, kMaxElements);
    const size_t n = Product(env, {job.probe_count, states * T, B, H}, "probes");
    const float* probes = ArrayArg<float>(env, info[17], "probes", n, false);
    CheckFinite(env, *job.ks, probes, n, "probes");
    job.entries = In(stage, probes, n);
  } else if (kind == "basis") {
    job.kind = SourceKind::kBasis;
    job.probe_count = H;
    Product(env, {states * T, B, H}, "a basis probe");
  } else {
    throw Napi::TypeError::New(env, "kind must be 'output', 'probes' or 'basis', got '" + kind + "'");
  }
  Product(env, {job.probe_count, per_set}, "the norms");
  return job;
}

void Run(SourceNormsJob& job) {
  const LayerSpec& s = job.spec;
  const size_t T = job.input.steps, B = job.input.batch, H = s.hidden, states = s.layers * s.directions();
  const size_t state_n = states * B * H, per_set = states * T * T, probe_n = states * T * B * H;
  engine::LayerWorkspace ws;
  engine::ForwardRecord rec;
  std::vector<float> hT(state_n), cT(engine::cell_info(s.cell).has_cell_state ? state_n : 0);
  engine::layer_forward(*job.ks, &ThreadPool::global(), s, job.weights, job.input, ws, rec,
                        {nullptr, hT.data(), cT.empty() ? nullptr : cT.data()});
  job.norms.assign(job.probe_count * per_set, 0.0);
  if (job.kind == SourceKind::kOutputGradient) {
    engine::layer_source_norms(*job.ks, &ThreadPool::global(), job.weights, rec, job.entries, nullptr, ws,
                               job.norms.data());
    return;
  }
  std::vector<float> basis(job.kind == SourceKind::kBasis ? probe_n : 0);
  for (size_t p = 0; p < job.probe_count; ++p) {
    const float* probes = job.entries + p * probe_n;
    if (job.kind == SourceKind::kBasis) {
      // Basis vector p at every step of every row of every layer-direction.
      std::fill(basis.begin(), basis.end(), 0.0f);
      for (size_t r = 0; r < states * T * B; ++r) basis[r * H + p] = 1.0f;
      probes = basis.data();
    }
    engine::layer_source_norms(*job.ks, &ThreadPool::global(), job.weights, rec, nullptr, probes, ws,
                               job.norms.data() + p * per_set);
  }
}

Napi::Value ToArray(Napi::Env env, const std::vector<double>& norms) {
  Napi::Float64Array out = Napi::Float64Array::New(env, norms.size());
  if (!norms.empty()) std::memcpy(out.Data(), norms.data(), norms.size() * sizeof(double));
  return out;
}

Napi::Value SourceGradientNorms(const Napi::CallbackInfo& info) {
  SourceNormsJob job = Parse(info, false);
  Run(job);
  return ToArray(info.Env(), job.norms);
}

Napi::Value SourceGradientNormsAsync(const Napi::CallbackInfo& info) {
  SourceNormsJob parsed = Parse(info, true);
  std::unique_ptr<Staging> stage = std::move(parsed.stage);
  auto job = std::make_shared<SourceNormsJob>(std::move(parsed));
  auto worker = std::make_unique<StagedWorker>(
      info.Env(), std::vector<Napi::Reference<Napi::Value>>{}, std::move(stage), [job] { Run(*job); },
      [](napi_env) {},
      [job](napi_env env) -> napi_value {
        // The completion throws nothing: a failure to make the array resolves with undefined.
        try {
          return ToArray(Napi::Env(env), job->norms);
        } catch (...) {
          return nullptr;
        }
      });
  return StagedWorker::Start(info.Env(), std::move(worker));
}

// blockSpectrum(block: Float32Array [n*n], n) -> Float64Array [2n + 1]: the n eigenvalues as
// (re, im) pairs, then the largest singular value. The block is copied (as doubles) first.
Napi::Value BlockSpectrum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2) throw Napi::TypeError::New(env, "blockSpectrum expects 2 arguments, got " + std::to_string(info.Length()));
  const size_t n = CountArg(env, info[1], "n", 1, 46340);  // n*n stays inside int32
  const float* block = ArrayArg<float>(env, info[0], "block", n * n, false);
  CheckFinite(env, *State(env).kernels, block, n * n, "block");
  const std::vector<double> a(block, block + n * n);
  std::vector<double> out(2 * n + 1);
  if (!engine::eigenvalues(a.data(), n, out.data())) {
    throw Napi::RangeError::New(env, "the QR iteration did not converge for a " + std::to_string(n) + " x " + std::to_string(n) + " block");
  }
  out[2 * n] = engine::largest_singular_value(a.data(), n, n, 1e-10, 2000);
  return ToArray(env, out);
}

}  // namespace

void InitDiagnosticsBindings(Napi::Env env, Napi::Object exports) {
  ExportGuarded<SourceGradientNorms>(env, exports, "sourceGradientNorms");
  ExportGuarded<SourceGradientNormsAsync>(env, exports, "sourceGradientNormsAsync");
  ExportGuarded<BlockSpectrum>(env, exports, "blockSpectrum");
}

}  // namespace bptt
