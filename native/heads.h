// Output heads fused after a recurrent stack: what the head's linear layer reads from the top
// layer's outputs (every step, or one pooled vector per sequence), and the loss of its outputs
// with dL/d(outputs). The float64 oracle of every function here is lib/engine/model.ts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "aligned_buffer.h"
#include "kernels/kernels.h"

namespace bptt {

class ThreadPool;

enum class Reduction { kMean, kSum };

struct LossResult {
  double loss;     // reduced as requested; 0 when no target counts
  size_t counted;  // non-ignored targets
};

// What a loss is normalised by over a whole batch: the targets that count and their total weight
// (a softmax loss: Σ w over the counted targets, their count without class weights; a regression
// loss: the counted elements). Computed once for a batch, whose shards then share it.
struct TargetTotals {
  size_t counted = 0;
  double weight = 0;

  // The factor dL/dz carries: 1 / weight for a mean (taken in float for a softmax loss), else 1.
  double scale(Reduction reduction, bool softmax) const {
    if (reduction != Reduction::kMean || weight <= 0) return 1.0;
    return softmax ? static_cast<double>(1.0f / static_cast<float>(weight)) : 1.0 / weight;
  }
  // The loss summed over the batch's rows, reduced as asked.
  LossResult reduce(double sum, Reduction reduction) const {
    const bool mean = reduction == Reduction::kMean && weight > 0;
    return {mean ? sum / weight : sum, counted};
  }
};

// The softmax targets of `rows` rows that count (not -1) and Σ w over them (class_weights [K] or
// null). With lengths (else null), row r = t * batch + b counts only inside its sequence:
// t < lengths[b].
TargetTotals count_targets(const int32_t* targets, size_t rows, const float* class_weights,
                           const int32_t* lengths = nullptr, size_t batch = 1);

// Softmax cross-entropy of every row of logits [rows, K] against its target (-1: ignored): returns
// Σ w·l over the rows, added in row order in double (so threads cannot change it), and overwrites
// the logits by dL/dlogits times `scale` (TargetTotals::scale of the whole batch; zeros for ignored
// rows). With class_weights [K] (else null) row r weighs class_weights[target], so a mean is
// Σ w·l / Σ w (PyTorch's CrossEntropyLoss(weight)).
double softmax_cross_entropy_sum(const kernels::KernelSet& ks, ThreadPool* pool, float* logits, size_t rows, size_t K,
                                 const int32_t* targets, const float* class_weights, float scale,
                                 AlignedBuffer& row_loss);

enum class RegressionLoss { kMse, kHuber };

// Mean squared error (or Huber with delta) of values [rows, K] against targets [rows, K], over
// the rows with active[r] != 0 (every row when active is null): returns the sum of the element
// losses, added in row order in double, and overwrites values by dL/dvalues with the loss's
// overall scale (1 / the batch's counted elements for a mean, else 1); zeros for inactive rows.
double regression_loss_sum(ThreadPool* pool, float* values, size_t rows, size_t K, const float* targets,
                           const uint8_t* active, RegressionLoss loss, float delta, double scale,
                           AlignedBuffer& row_loss);

// Which vectors of the top layer's outputs Y [T, B, W] the head reads.
enum class Pool {
  kEvery,  // every step: Y itself, T*B rows
  kLast,   // each sequence's last valid step (bidirectional: the reverse half at step 0, as h_n)
  kMean,   // each sequence's mean over its valid steps
};

// features [B, W] pooled from Y (kLast or kMean); lengths [B] or null (every sequence T steps);
// `hidden` is H, the width of one direction (W = dirs*H).
void pool_outputs(Pool pool, const float* Y, size_t T, size_t B, size_t W, size_t hidden, const int32_t* lengths,
                  float* features);

// The transpose of pool_outputs: dY [T, B, W] = the features' gradient [B, W] scattered back
// (dY is overwritten, zero where no feature reads).
void pool_outputs_backward(Pool pool, const float* dfeatures, size_t T, size_t B, size_t W, size_t hidden,
                           const int32_t* lengths, float* dY);

enum class HeadKind { kTokens, kClassify, kRegress };

// A model's head (lib/engine/model.ts HeadSpec): tokens = softmax at every step (pool kEvery);
// classify = softmax on a pooled vector (kLast or kMean); regress = MSE or Huber at every step
// (kEvery) or on the last valid step (kLast).
struct HeadSpec {
  HeadKind kind = HeadKind::kTokens;
  Pool pool = Pool::kEvery;
  RegressionLoss loss = RegressionLoss::kMse;
  float delta = 1;
  std::vector<float> class_weights;  // classify: [K] or empty
  size_t outputs = 0;                // K

  bool classifies() const { return kind != HeadKind::kRegress; }
  // Rows of the head's outputs and of its targets: T*B per step, B pooled.
  size_t rows(size_t steps, size_t batch) const { return pool == Pool::kEvery ? steps * batch : batch; }
  // Elements of the targets: class ids per row, or K values per row.
  size_t target_count(size_t steps, size_t batch) const { return rows(steps, batch) * (classifies() ? 1 : outputs); }
};

}  // namespace bptt
