#include "heads.h"

#include "parallel.h"

namespace bptt {

LossResult softmax_cross_entropy(const kernels::KernelSet& ks, ThreadPool* pool, float* logits, size_t rows, size_t K,
                                 const int32_t* targets, Reduction reduction, AlignedBuffer& row_loss) {
  size_t counted = 0;
  for (size_t r = 0; r < rows; ++r) counted += targets[r] >= 0;
  const bool mean = reduction == Reduction::kMean && counted > 0;
  const float scale = mean ? 1.0f / static_cast<float>(counted) : 1.0f;
  double* losses = row_loss.doubles(rows);
  ForRows(pool, rows, 64, [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r) losses[r] = ks.softmax_xent_row(logits + r * K, K, targets[r], scale);
  });
  double loss = 0;
  for (size_t r = 0; r < rows; ++r) loss += losses[r];
  if (mean) loss /= static_cast<double>(counted);
  return {loss, counted};
}

}  // namespace bptt
