// Portable kernels: the reference path every SIMD kernel is compared with, and the fallback on
// CPUs without AVX2.
#include <cmath>

#include "kernels.h"

namespace bptt {
namespace kernels {
namespace {

constexpr int kMr = 4;
constexpr int kNr = 8;

void GemmTile(size_t kc, const float* ap, const float* bp, float* c, size_t ldc, size_t m, size_t n,
              int accumulate) {
  float acc[kMr][kNr] = {};
  for (size_t k = 0; k < kc; ++k) {
    for (int i = 0; i < kMr; ++i)
      for (int j = 0; j < kNr; ++j) acc[i][j] += ap[i] * bp[j];
    ap += kMr;
    bp += kNr;
  }
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

void Tanh(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = std::tanh(x[i]);
}

double Xent(float* z, size_t k, int32_t target, float scale) {
  if (target < 0) {
    for (size_t i = 0; i < k; ++i) z[i] = 0.0f;
    return 0.0;
  }
  float max = z[0];
  for (size_t i = 1; i < k; ++i) max = std::fmax(max, z[i]);
  const float shifted_target = z[target] - max;
  float sum = 0.0f;
  for (size_t i = 0; i < k; ++i) {
    z[i] = std::exp(z[i] - max);
    sum += z[i];
  }
  const float factor = scale / sum;
  for (size_t i = 0; i < k; ++i) z[i] *= factor;
  z[target] -= scale;
  return std::log(static_cast<double>(sum)) - static_cast<double>(shifted_target);
}

void Softmax(float* z, size_t k, float inv_t) {
  float max = z[0];
  for (size_t i = 1; i < k; ++i) max = std::fmax(max, z[i]);
  float sum = 0.0f;
  for (size_t i = 0; i < k; ++i) {
    z[i] = std::exp((z[i] - max) * inv_t);
    sum += z[i];
  }
  for (size_t i = 0; i < k; ++i) z[i] /= sum;
}

const KernelSet kSet{"scalar", kMr, kNr, GemmTile, Tanh, Xent, Softmax};

}  // namespace

const KernelSet& scalar_kernels() { return kSet; }

}  // namespace kernels
}  // namespace bptt
