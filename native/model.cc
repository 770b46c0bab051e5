#include "model.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>

#include "parallel.h"
#include "shards.h"

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

// What the call's loss is normalised by, over its whole batch (padding steps never count,
// whatever their targets say).
TargetTotals CountTargets(const HeadSpec& head, const engine::LayerInput& input, const HeadTargets& targets) {
  const size_t T = input.steps, B = input.batch, rows = head.rows(T, B);
  const int32_t* lengths = head.pool == Pool::kEvery ? input.lengths : nullptr;
  if (head.classifies()) {
    return count_targets(targets.classes, rows, head.class_weights.empty() ? nullptr : head.class_weights.data(), lengths, B);
  }
  size_t active = rows;
  if (lengths != nullptr) {
    active = 0;
    for (size_t b = 0; b < B; ++b) active += static_cast<size_t>(lengths[b]);
  }
  const size_t elements = active * head.outputs;
  return {elements, static_cast<double>(elements)};
}

// The head's loss of z [rows, K] against the targets, summed over the rows (Σ w·l for a softmax
// head); z becomes dL/dz, scaled by `scale`. Padding steps count for nothing.
double LossSum(const kernels::KernelSet& ks, ThreadPool* pool, const HeadSpec& head, const engine::ForwardRecord& rec,
               float* z, size_t rows, const HeadTargets& targets, double scale, ModelWorkspace& ws) {
  const size_t K = head.outputs;
  const bool masked = head.pool == Pool::kEvery && !rec.lengths.empty();
  if (!head.classifies()) {
    return regression_loss_sum(pool, z, rows, K, targets.values, masked ? rec.active.data() : nullptr, head.loss, head.delta,
                               scale, ws.row_loss);
  }
  const int32_t* classes = targets.classes;
  if (masked) {
    int32_t* m = ws.targets.as<int32_t>(rows);
    for (size_t r = 0; r < rows; ++r) m[r] = rec.active[r] ? classes[r] : -1;
    classes = m;
  }
  return softmax_cross_entropy_sum(ks, pool, z, rows, K, classes, head.class_weights.empty() ? nullptr : head.class_weights.data(),
                                   static_cast<float>(scale), ws.row_loss);
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

// One call's forward pass, loss and backward on the rows of `input` (a whole batch, or a shard
// of one); returns the loss summed over them, dL/dz scaled by `scale`.
double RowsLossAndGradients(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                            const engine::LayerWeights& weights, const HeadSpec& head, const HeadWeights& head_weights,
                            const engine::LayerInput& input, const HeadTargets& targets, size_t truncate, double scale,
                            ModelWorkspace& ws, const engine::LayerGrads& grads, const HeadGrads& head_grads,
                            const engine::LayerInputGrads& input_grads, const ModelStates& states) {
  const size_t rows = head.rows(input.steps, input.batch);
  float* z = ws.logits.floats(rows * head.outputs);
  const float* X = Forward(ks, pool, spec, weights, head, head_weights, input, ws, z, states);
  const double sum = LossSum(ks, pool, head, ws.record, z, rows, targets, scale, ws);
  engine::LayerUpstream up;
  up.dy = HeadBackward(ks, pool, spec, head, head_weights, ws.record, X, z, rows, &head_grads, ws);
  up.truncate = truncate;
  engine::layer_backward(ks, pool, weights, ws.record, up, ws.layer, input_grads, grads);
  return sum;
}

// Below this many multiply-adds in the recurrence a call is not worth splitting.
constexpr size_t kShardWork = size_t{1} << 20;

// Whether a call runs as shards. Not when it asks for dx (the layer API's, not a model's).
bool Sharded(const engine::LayerSpec& spec, const engine::LayerInput& input, const engine::LayerInputGrads& input_grads) {
  const size_t work = input.steps * input.batch * spec.gates() * spec.hidden * spec.hidden;
  return input.batch >= kShards * kMinShardRows && work >= kShardWork && input_grads.dx == nullptr;
}

// The batch's shards (shards.h), each run by RowsLossAndGradients on its rows (the forward record
// gathers them from the whole batch's inputs; targets, h0 and c0 are copied) into its own
// workspace, sharing the backward chunk budget: shard 0 into grads, the others into their
// workspace's gradients, then added to grads in shard order.
double ShardedLossAndGradients(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                               const engine::LayerWeights& weights, const HeadSpec& head,
                               const HeadWeights& head_weights, const engine::LayerInput& input,
                               const HeadTargets& targets, size_t truncate, double scale, ModelWorkspace& ws,
                               const engine::LayerGrads& grads, const HeadGrads& head_grads,
                               const engine::LayerInputGrads& input_grads, const ModelStates& states) {
  const size_t T = input.steps, B = input.batch, H = spec.hidden, K = head.outputs, W = spec.output_width();
  const size_t L = spec.layers, LD = L * spec.directions(), count = spec.parameter_count();
  const bool per_step = head.pool == Pool::kEvery;
  if (ws.shards.size() != kShards) ws.shards.resize(kShards);
  double sums[kShards];
  auto size_of = [&](size_t p) { return p < count ? spec.parameter_size(p) : p == count ? K * W : K; };
  RunShards(pool, [&](ThreadPool* inner, size_t s) {
    const ShardRows rows = ShardOf(ks, B, s);
    const size_t b0 = rows.first, n = rows.count;
    ModelWorkspace& sw = ws.shards[s];
    sw.layer.chunk_rows = engine::kBackwardChunkRows / kShards;
    // The shard's rows of `groups` blocks of B rows of `width` elements, copied into `buffer`.
    auto own = [&](AlignedBuffer& buffer, const auto* all, size_t groups, size_t width) {
      using Elem = std::remove_const_t<std::remove_pointer_t<decltype(all)>>;
      Elem* mine = all == nullptr ? nullptr : buffer.as<Elem>(groups * n * width);
      if (mine != nullptr) GatherRows(mine, all, groups, B, rows, width);
      return mine;
    };
    // Space for the shard's rows of an output of `groups` blocks of B rows of H states.
    auto space = [&](AlignedBuffer& buffer, const float* whole, size_t groups) {
      return whole == nullptr ? nullptr : buffer.floats(groups * n * H);
    };
    engine::LayerInput part = input;
    part.batch = n;
    part.input_batch_stride = B;  // the forward record gathers the shard's rows of the inputs
    part.dropout_first_row = b0;  // and draws their dropout masks of the whole batch
    part.dropout_batch = B;
    if (input.tokens != nullptr) part.tokens = input.tokens + b0;
    if (input.dense != nullptr) part.dense = input.dense + b0 * spec.input;
    if (input.lengths != nullptr) part.lengths = input.lengths + b0;
    part.h0 = own(sw.shard_h0, input.h0, LD, H);
    part.c0 = own(sw.shard_c0, input.c0, LD, H);
    HeadTargets part_targets;
    if (per_step) {
      part_targets.classes = own(sw.shard_classes, targets.classes, T, 1);
      part_targets.values = own(sw.shard_values, targets.values, T, K);
    } else {
      part_targets.classes = targets.classes ? targets.classes + b0 : nullptr;
      part_targets.values = targets.values ? targets.values + b0 * K : nullptr;
    }
    ModelStates part_states;
    part_states.capture_step = states.capture_step;
    part_states.hT = space(sw.shard_hT, states.hT, LD);
    part_states.cT = space(sw.shard_cT, states.cT, LD);
    part_states.h_at = space(sw.shard_h_at, states.h_at, L);
    part_states.c_at = space(sw.shard_c_at, states.c_at, L);
    engine::LayerInputGrads part_input_grads;
    part_input_grads.dh0 = space(sw.shard_dh0, input_grads.dh0, LD);
    part_input_grads.dc0 = space(sw.shard_dc0, input_grads.dc0, LD);
    engine::LayerGrads part_grads = grads;
    HeadGrads part_head_grads = head_grads;
    if (s > 0) {
      sw.grads.resize(count + 2);
      for (size_t p = 0; p < count; ++p) part_grads.arrays[p] = sw.grads[p].floats(size_of(p));
      part_head_grads = {sw.grads[count].floats(size_of(count)), sw.grads[count + 1].floats(size_of(count + 1))};
    }
    sums[s] = RowsLossAndGradients(ks, inner, spec, weights, head, head_weights, part, part_targets, truncate, scale, sw,
                                   part_grads, part_head_grads, part_input_grads, part_states);
    const std::pair<float*, const float*> outputs[] = {{input_grads.dh0, part_input_grads.dh0}, {input_grads.dc0, part_input_grads.dc0},
                                                       {states.hT, part_states.hT}, {states.cT, part_states.cT}};
    for (const auto& [whole, mine] : outputs)
      if (whole != nullptr) ScatterRows(whole, mine, LD, B, rows, H);
    if (states.h_at != nullptr) ScatterRows(states.h_at, part_states.h_at, L, B, rows, H);
    if (states.c_at != nullptr) ScatterRows(states.c_at, part_states.c_at, L, B, rows, H);
  });
  for (size_t p = 0; p < count + 2; ++p) {
    float* total = p < count ? grads.arrays[p] : p == count ? head_grads.weight : head_grads.bias;
    AddShardParts(pool, total, size_of(p), [&](size_t s) { return ws.shards[s].grads[p].get<float>(); });
  }
  double sum = 0;
  for (size_t s = 0; s < kShards; ++s) sum += sums[s];
  return sum;
}

}  // namespace

void model_forward(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                   const engine::LayerWeights& weights, const HeadSpec& head, const HeadWeights& head_weights,
                   const engine::LayerInput& input, ModelWorkspace& ws, float* outputs, const ModelStates& states) {
  // No backward follows: keep the outputs only, unless states after a step are captured (they
  // are read from the cell states the record keeps).
  engine::LayerInput outputs_only = input;
  outputs_only.inference = states.h_at == nullptr;
  Forward(ks, pool, spec, weights, head, head_weights, outputs_only, ws, outputs, states);
}

LossResult model_loss_and_gradients(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                                    const engine::LayerWeights& weights, const HeadSpec& head,
                                    const HeadWeights& head_weights, const engine::LayerInput& input,
                                    const HeadTargets& targets, size_t truncate, Reduction reduction, ModelWorkspace& ws,
                                    const engine::LayerGrads& grads, const HeadGrads& head_grads,
                                    const engine::LayerInputGrads& input_grads, const ModelStates& states) {
  const TargetTotals totals = CountTargets(head, input, targets);
  const double scale = totals.scale(reduction, head.classifies());
  const double sum =
      Sharded(spec, input, input_grads)
          ? ShardedLossAndGradients(ks, pool, spec, weights, head, head_weights, input, targets, truncate, scale, ws, grads,
                                    head_grads, input_grads, states)
          : RowsLossAndGradients(ks, pool, spec, weights, head, head_weights, input, targets, truncate, scale, ws, grads,
                                 head_grads, input_grads, states);
  return totals.reduce(sum, reduction);
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
  const TargetTotals totals = CountTargets(head, input, targets);
  const float* X = Forward(ks, pool, spec, weights, head, head_weights, input, ws, z, states);
  const double sum = LossSum(ks, pool, head, ws.record, z, rows, targets, totals.scale(reduction, head.classifies()), ws);
  const float* d = HeadBackward(ks, pool, spec, head, head_weights, ws.record, X, z, rows, nullptr, ws);
  std::memcpy(dy, d, input.steps * input.batch * spec.output_width() * sizeof(float));
  return totals.reduce(sum, reduction);
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
