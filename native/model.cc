#include "model.h"

#include <algorithm>
#include <cstring>

#include "parallel.h"

namespace bptt {
namespace model {
namespace {

// logits = Y fc.weight^T + fc.bias for every row of the top layer's output Y.
void Logits(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec, const SoftmaxHead& head,
            const engine::ForwardRecord& rec, float* logits) {
  const size_t rows = rec.steps * rec.batch, W = spec.output_width(), K = head.classes;
  FillRows(pool, logits, rows, head.bias, K);
  gemm(ks, pool, rows, K, W, Plain(rec.outputs[spec.layers - 1].get<float>(), W), Transposed(head.weight, W), logits, K,
       true);
}

// The hidden (and cell) states of every layer after `step`, for a unidirectional model.
void CaptureStates(const engine::LayerSpec& spec, const engine::ForwardRecord& rec, const ModelStates& states) {
  if (states.h_at == nullptr) return;
  const size_t B = rec.batch, H = spec.hidden, block = B * H, s = states.capture_step;
  for (size_t l = 0; l < spec.layers; ++l) {
    std::memcpy(states.h_at + l * block, rec.outputs[l].get<float>() + s * block, block * sizeof(float));
    if (states.c_at != nullptr) std::memcpy(states.c_at + l * block, rec.cells[l].get<float>() + s * block, block * sizeof(float));
  }
}

}  // namespace

void model_forward(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                   const engine::LayerWeights& weights, const SoftmaxHead& head, const engine::LayerInput& input,
                   ModelWorkspace& ws, float* logits, const ModelStates& states) {
  engine::layer_forward(ks, pool, spec, weights, input, ws.layer, ws.record, {nullptr, states.hT, states.cT});
  CaptureStates(spec, ws.record, states);
  Logits(ks, pool, spec, head, ws.record, logits);
}

LossResult model_loss_and_gradients(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                                    const engine::LayerWeights& weights, const SoftmaxHead& head,
                                    const engine::LayerInput& input, const int32_t* targets, size_t truncate,
                                    Reduction reduction, ModelWorkspace& ws, const engine::LayerGrads& grads,
                                    const HeadGrads& head_grads, const engine::LayerInputGrads& input_grads,
                                    const ModelStates& states) {
  const size_t rows = input.steps * input.batch, W = spec.output_width(), K = head.classes;
  engine::ForwardRecord& rec = ws.record;
  engine::layer_forward(ks, pool, spec, weights, input, ws.layer, rec, {nullptr, states.hT, states.cT});
  CaptureStates(spec, rec, states);
  float* logits = ws.logits.floats(rows * K);
  Logits(ks, pool, spec, head, rec, logits);

  // Padding steps count for nothing, whatever their targets say.
  const int32_t* counted_targets = targets;
  if (!rec.lengths.empty()) {
    int32_t* masked = ws.targets.as<int32_t>(rows);
    for (size_t r = 0; r < rows; ++r) masked[r] = rec.active[r] ? targets[r] : -1;
    counted_targets = masked;
  }
  const LossResult result = softmax_cross_entropy(ks, pool, logits, rows, K, counted_targets, reduction, ws.row_loss);
  const float* dz = logits;
  const float* Y = rec.outputs[spec.layers - 1].get<float>();
  gemm(ks, pool, K, W, rows, Transposed(dz, K), Plain(Y, W), head_grads.weight, W, false);
  ColumnSums(dz, rows, K, ws.col_sums.doubles(K), head_grads.bias);
  float* dy = ws.dy.floats(rows * W);
  gemm(ks, pool, rows, W, K, Plain(dz, K), Plain(head.weight, W), dy, W, false);
  engine::LayerUpstream up;
  up.dy = dy;
  up.truncate = truncate;
  engine::layer_backward(ks, pool, weights, rec, up, ws.layer, input_grads, grads);
  return result;
}

TrainStepResult model_train_step(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                                 const std::vector<float*>& params, size_t classes, const engine::LayerInput& input,
                                 const int32_t* targets, size_t truncate, Reduction reduction, const ClipConfig& clip,
                                 const OptimizerConfig& optimizer, const std::vector<std::array<float*, 2>>& state,
                                 ModelWorkspace& ws, const ModelStates& states) {
  const size_t count = spec.parameter_count(), W = spec.output_width();
  ws.grads.resize(count + 2);
  ws.names.resize(count + 2);
  std::vector<UpdateEntry> entries(count + 2);
  for (size_t p = 0; p < count + 2; ++p) {
    const size_t n = p < count ? spec.parameter_size(p) : p == count ? classes * W : classes;
    ws.names[p] = p < count ? "rnn." + spec.parameter_name(p) : p == count ? "fc.weight" : "fc.bias";
    entries[p] = {ws.names[p].c_str(), params[p], ws.grads[p].floats(n), {state[p][0], state[p][1]}, n};
  }
  engine::LayerWeights weights;
  engine::LayerGrads grads;
  for (size_t p = 0; p < count; ++p) {
    weights.arrays.push_back(params[p]);
    grads.arrays.push_back(entries[p].grad);
  }
  const SoftmaxHead head{classes, params[count], params[count + 1]};
  const HeadGrads head_grads{entries[count].grad, entries[count + 1].grad};
  const LossResult result = model_loss_and_gradients(ks, pool, spec, weights, head, input, targets, truncate, reduction, ws,
                                                     grads, head_grads, {}, states);
  return finish_train_step(ks, result.loss, clip, optimizer, entries.data(), entries.size());
}

}  // namespace model
}  // namespace bptt
