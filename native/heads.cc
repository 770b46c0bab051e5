#include "heads.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "parallel.h"

namespace bptt {
namespace {

// Adds the rows' losses in row order, so threads cannot change the sum.
double SumInOrder(const double* losses, size_t rows) {
  double sum = 0;
  for (size_t r = 0; r < rows; ++r) sum += losses[r];
  return sum;
}

}  // namespace

TargetTotals count_targets(const int32_t* targets, size_t rows, const float* class_weights, const int32_t* lengths,
                           size_t batch) {
  TargetTotals totals;
  for (size_t r = 0; r < rows; ++r) {
    if (targets[r] < 0 || (lengths != nullptr && r / batch >= static_cast<size_t>(lengths[r % batch]))) continue;
    ++totals.counted;
    totals.weight += class_weights ? class_weights[targets[r]] : 1.0;
  }
  return totals;
}

double softmax_cross_entropy_sum(const kernels::KernelSet& ks, ThreadPool* pool, float* logits, size_t rows, size_t K,
                                 const int32_t* targets, const float* class_weights, float scale,
                                 AlignedBuffer& row_loss) {
  double* losses = row_loss.doubles(rows);
  ForRows(pool, rows, 64, [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r) {
      const float w = class_weights && targets[r] >= 0 ? class_weights[targets[r]] : 1.0f;
      losses[r] = w * ks.softmax_xent_row(logits + r * K, K, targets[r], w * scale);
    }
  });
  return SumInOrder(losses, rows);
}

double regression_loss_sum(ThreadPool* pool, float* values, size_t rows, size_t K, const float* targets,
                           const uint8_t* active, RegressionLoss loss, float delta, double scale,
                           AlignedBuffer& row_loss) {
  double* losses = row_loss.doubles(rows);
  ForRows(pool, rows, 64, [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r) {
      float* z = values + r * K;
      const float* y = targets + r * K;
      double sum = 0;
      if (active != nullptr && !active[r]) {
        std::fill(z, z + K, 0.0f);
      } else {
        for (size_t k = 0; k < K; ++k) {
          const double d = static_cast<double>(z[k]) - y[k];
          double grad;
          if (loss == RegressionLoss::kMse) {
            sum += d * d;
            grad = 2 * d;
          } else if (std::fabs(d) <= delta) {
            sum += 0.5 * d * d;
            grad = d;
          } else {
            sum += delta * (std::fabs(d) - 0.5 * delta);
            grad = d > 0 ? delta : -delta;
          }
          z[k] = static_cast<float>(grad * scale);
        }
      }
      losses[r] = sum;
    }
  });
  return SumInOrder(losses, rows);
}

void pool_outputs(Pool pool, const float* Y, size_t T, size_t B, size_t W, size_t hidden, const int32_t* lengths,
                  float* features) {
  for (size_t b = 0; b < B; ++b) {
    const size_t n = lengths ? static_cast<size_t>(lengths[b]) : T;
    float* f = features + b * W;
    if (pool == Pool::kMean) {
      for (size_t j = 0; j < W; ++j) {
        double sum = 0;
        for (size_t t = 0; t < n; ++t) sum += Y[(t * B + b) * W + j];
        f[j] = static_cast<float>(sum / static_cast<double>(n));
      }
    } else {
      // The forward direction ends at the last valid step, the reverse one at step 0.
      std::memcpy(f, Y + ((n - 1) * B + b) * W, hidden * sizeof(float));
      std::memcpy(f + hidden, Y + b * W + hidden, (W - hidden) * sizeof(float));
    }
  }
}

void pool_outputs_backward(Pool pool, const float* dfeatures, size_t T, size_t B, size_t W, size_t hidden,
                           const int32_t* lengths, float* dY) {
  std::memset(dY, 0, T * B * W * sizeof(float));
  for (size_t b = 0; b < B; ++b) {
    const size_t n = lengths ? static_cast<size_t>(lengths[b]) : T;
    const float* g = dfeatures + b * W;
    if (pool == Pool::kMean) {
      const float inv = static_cast<float>(1.0 / static_cast<double>(n));
      for (size_t t = 0; t < n; ++t)
        for (size_t j = 0; j < W; ++j) dY[(t * B + b) * W + j] = g[j] * inv;
    } else {
      std::memcpy(dY + ((n - 1) * B + b) * W, g, hidden * sizeof(float));
      std::memcpy(dY + b * W + hidden, g + hidden, (W - hidden) * sizeof(float));
    }
  }
}

}  // namespace bptt
