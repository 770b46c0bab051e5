// Output heads fused after a recurrent stack: each turns the top layer's outputs into a loss and
// the gradient of that loss with respect to its inputs.
#pragma once

#include <cstddef>
#include <cstdint>

#include "aligned_buffer.h"
#include "kernels/kernels.h"

namespace bptt {

class ThreadPool;

enum class Reduction { kMean, kSum };

struct LossResult {
  double loss;     // reduced as requested; 0 when no target counts
  size_t counted;  // non-ignored targets
};

// Softmax cross-entropy of every row of logits [rows, K] against its target (-1: ignored), summed
// or averaged over the counted rows; the logits are overwritten by dL/dlogits (zeros for ignored
// rows). Row losses are added in row order in double, so the result does not depend on threads.
LossResult softmax_cross_entropy(const kernels::KernelSet& ks, ThreadPool* pool, float* logits, size_t rows, size_t K,
                                 const int32_t* targets, Reduction reduction, AlignedBuffer& row_loss);

}  // namespace bptt
