#include "model.h"

#include <algorithm>
#include <cstring>

#include "parallel.h"

namespace bptt {
namespace model {
namespace {

const int32_t* Lengths(const engine::ForwardRecord& rec) { return rec.lengths.empty() ? nullptr : rec.lengths.data(); }

// What the head's linear layer reads: the top layer's outputs [T*B, W], or one vector per
// sequence [B, W] pooled from them into the workspace.
const float* HeadInput(const engine::LayerSpec& spec, const HeadSpec& head, const engine::ForwardRecord& rec,
                       ModelWorkspace& ws) {
  const float* Y = rec.outputs[spec.layers - 1].get<float>();
  if (head.pool == Pool::kEvery) return Y;
  const size_t W = spec.output_width();
  float* features = ws.features.floats(rec.batch * W);
  pool_outputs(head.pool, Y, rec.steps, rec.batch, W, spec.hidden, Lengths(rec), features);
  return features;
}

// out = X fc.weight^T + fc.bias for every row of X [rows, W].
void Linear(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec, const HeadSpec& head,
            const HeadWeights& hw, const float* X, size_t rows, float* out) {
  const size_t W = spec.output_width(), K = head.outputs;
  gemm(ks, pool, rows, K, W, Plain(X, W), Transposed(hw.weight, W), out, K, false, Epilogue::Bias(hw.bias));
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

// The forward pass into ws.record and the head's outputs into ws.logits; returns the head's input.
const float* Forward(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                     const engine::LayerWeights& weights, const HeadSpec& head, const HeadWeights& hw,
                     const engine::LayerInput& input, ModelWorkspace& ws, float* z, const ModelStates& states) {
  engine::layer_forward(ks, pool, spec, weights, input, ws.layer, ws.record, {nullptr, states.hT, states.cT});
  CaptureStates(spec, ws.record, states);
  const float* X = HeadInput(spec, head, ws.record, ws);
  Linear(ks, pool, spec, head, hw, X, head.rows(input.steps, input.batch), z);
  return X;
}

// The head's loss of z [rows, K] against the targets; z becomes dL/dz. Padding steps count for
// nothing, whatever their targets say.
LossResult Loss(const kernels::KernelSet& ks, ThreadPool* pool, const HeadSpec& head, const engine::ForwardRecord& rec,
                float* z, size_t rows, const HeadTargets& targets, Reduction reduction, ModelWorkspace& ws) {
  const size_t K = head.outputs;
  const bool masked = head.pool == Pool::kEvery && !rec.lengths.empty();
  if (!head.classifies()) {
    return regression_loss(pool, z, rows, K, targets.values, masked ? rec.active.data() : nullptr, head.loss, head.delta,
                           reduction, ws.row_loss);
  }
  const int32_t* classes = targets.classes;
  if (masked) {
    int32_t* m = ws.targets.as<int32_t>(rows);
    for (size_t r = 0; r < rows; ++r) m[r] = rec.active[r] ? classes[r] : -1;
    classes = m;
  }
  return softmax_cross_entropy(ks, pool, z, rows, K, classes, head.class_weights.empty() ? nullptr : head.class_weights.data(),
                               reduction, ws.row_loss);
}

// From dz [rows, K]: the head's weight gradients (when asked) and dy [T, B, W] in ws.dy.
float* HeadBackward(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec, const HeadSpec& head,
                    const HeadWeights& hw, const engine::ForwardRecord& rec, const float* X, const float* dz,
                    size_t rows, const HeadGrads* head_grads, ModelWorkspace& ws) {
  const size_t W = spec.output_width(), K = head.outputs, T = rec.steps, B = rec.batch;
  if (head_grads != nullptr) {
    gemm(ks, pool, K, W, rows, Transposed(dz, K), Plain(X, W), head_grads->weight, W, false);
    ColumnSums(dz, rows, K, ws.col_sums.doubles(K), head_grads->bias);
  }
  float* dy = ws.dy.floats(T * B * W);
  if (head.pool == Pool::kEvery) {
    gemm(ks, pool, rows, W, K, Plain(dz, K), Plain(hw.weight, W), dy, W, false);
  } else {
    float* dfeatures = ws.dfeatures.floats(rows * W);
    gemm(ks, pool, rows, W, K, Plain(dz, K), Plain(hw.weight, W), dfeatures, W, false);
    pool_outputs_backward(head.pool, dfeatures, T, B, W, spec.hidden, Lengths(rec), dy);
  }
  return dy;
}

}  // namespace

void model_forward(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                   const engine::LayerWeights& weights, const HeadSpec& head, const HeadWeights& head_weights,
                   const engine::LayerInput& input, ModelWorkspace& ws, float* outputs, const ModelStates& states) {
  Forward(ks, pool, spec, weights, head, head_weights, input, ws, outputs, states);
}

LossResult model_loss_and_gradients(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                                    const engine::LayerWeights& weights, const HeadSpec& head,
                                    const HeadWeights& head_weights, const engine::LayerInput& input,
                                    const HeadTargets& targets, size_t truncate, Reduction reduction, ModelWorkspace& ws,
                                    const engine::LayerGrads& grads, const HeadGrads& head_grads,
                                    const engine::LayerInputGrads& input_grads, const ModelStates& states) {
  const size_t rows = head.rows(input.steps, input.batch);
  float* z = ws.logits.floats(rows * head.outputs);
  const float* X = Forward(ks, pool, spec, weights, head, head_weights, input, ws, z, states);
  const LossResult result = Loss(ks, pool, head, ws.record, z, rows, targets, reduction, ws);
  engine::LayerUpstream up;
  up.dy = HeadBackward(ks, pool, spec, head, head_weights, ws.record, X, z, rows, &head_grads, ws);
  up.truncate = truncate;
  engine::layer_backward(ks, pool, weights, ws.record, up, ws.layer, input_grads, grads);
  return result;
}

LossResult model_output_gradients(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                                  const engine::LayerWeights& weights, const HeadSpec& head,
                                  const HeadWeights& head_weights, const engine::LayerInput& input,
                                  const HeadTargets& targets, Reduction reduction, ModelWorkspace& ws, float* dy) {
  const size_t rows = head.rows(input.steps, input.batch);
  float* z = ws.logits.floats(rows * head.outputs);
  const size_t state_n = spec.layers * spec.directions() * input.batch * spec.hidden;
  ModelStates states;
  states.hT = ws.final_h.floats(state_n);
  if (engine::cell_info(spec.cell).has_cell_state) states.cT = ws.final_c.floats(state_n);
  const float* X = Forward(ks, pool, spec, weights, head, head_weights, input, ws, z, states);
  const LossResult result = Loss(ks, pool, head, ws.record, z, rows, targets, reduction, ws);
  const float* d = HeadBackward(ks, pool, spec, head, head_weights, ws.record, X, z, rows, nullptr, ws);
  std::memcpy(dy, d, input.steps * input.batch * spec.output_width() * sizeof(float));
  return result;
}

TrainStepResult model_train_step(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                                 const HeadSpec& head, const std::vector<float*>& params, const engine::LayerInput& input,
                                 const HeadTargets& targets, size_t truncate, Reduction reduction, const ClipConfig& clip,
                                 const OptimizerConfig& optimizer, const std::vector<std::array<float*, 2>>& state,
                                 ModelWorkspace& ws, const ModelStates& states) {
  const size_t count = spec.parameter_count(), W = spec.output_width(), K = head.outputs;
  ws.grads.resize(count + 2);
  ws.names.resize(count + 2);
  std::vector<UpdateEntry> entries(count + 2);
  for (size_t p = 0; p < count + 2; ++p) {
    const size_t n = p < count ? spec.parameter_size(p) : p == count ? K * W : K;
    ws.names[p] = p < count ? "rnn." + spec.parameter_name(p) : p == count ? "fc.weight" : "fc.bias";
    entries[p] = {ws.names[p].c_str(), params[p], ws.grads[p].floats(n), {state[p][0], state[p][1]}, n};
  }
  engine::LayerWeights weights;
  engine::LayerGrads grads;
  for (size_t p = 0; p < count; ++p) {
    weights.arrays.push_back(params[p]);
    grads.arrays.push_back(entries[p].grad);
  }
  const HeadWeights head_weights{params[count], params[count + 1]};
  const HeadGrads head_grads{entries[count].grad, entries[count + 1].grad};
  const LossResult result = model_loss_and_gradients(ks, pool, spec, weights, head, head_weights, input, targets, truncate,
                                                     reduction, ws, grads, head_grads, {}, states);
  return finish_train_step(ks, result.loss, clip, optimizer, entries.data(), entries.size());
}

}  // namespace model
}  // namespace bptt
