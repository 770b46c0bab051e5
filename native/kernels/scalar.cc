// Portable kernels: the reference path every SIMD kernel is compared with, and the fallback on
// CPUs without AVX2.
#include <cmath>

#include "kernels.h"

namespace bptt {
namespace kernels {
namespace {

constexpr int kMr = 4;
constexpr int kNr = 8;

// Computes only the m rows asked for; A's element (i, k) at ap[i * a_row + k * a_k] (a_row = 1,
// a_k = kMr for a packed panel; a_k is the element stride of a single row read in place by
// GemmRow), B's row k at bp + k * b_k. kInPlace: B's row holds only the n columns asked for, so
// only those are computed (each column's sum is the same either way).
template <int kRows, bool kInPlace>
void GemmTileRows(size_t kc, const float* ap, size_t a_row, size_t a_k, const float* bp, size_t b_k, float* c,
                  size_t ldc, size_t n, int accumulate) {
  const size_t cols = kInPlace ? n : kNr;
  float acc[kRows][kNr] = {};
  for (size_t k = 0; k < kc; ++k) {
    for (int i = 0; i < kRows; ++i)
      for (size_t j = 0; j < cols; ++j) acc[i][j] += ap[i * a_row] * bp[j];
    ap += a_k;
    bp += b_k;
  }
  for (int i = 0; i < kRows; ++i)
    for (size_t j = 0; j < n; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

template <bool kInPlace>
void GemmTileRowsOf(size_t kc, const float* ap, size_t a_row, size_t a_k, const float* bp, size_t b_k, float* c,
                    size_t ldc, size_t m, size_t n, int accumulate) {
  static_assert(kMr == 4, "one case per row count");
  switch (m) {
    case 1: return GemmTileRows<1, kInPlace>(kc, ap, a_row, a_k, bp, b_k, c, ldc, n, accumulate);
    case 2: return GemmTileRows<2, kInPlace>(kc, ap, a_row, a_k, bp, b_k, c, ldc, n, accumulate);
    case 3: return GemmTileRows<3, kInPlace>(kc, ap, a_row, a_k, bp, b_k, c, ldc, n, accumulate);
    default: return GemmTileRows<4, kInPlace>(kc, ap, a_row, a_k, bp, b_k, c, ldc, n, accumulate);
  }
}

void GemmTile(size_t kc, const float* ap, const float* bp, float* c, size_t ldc, size_t m, size_t n,
              int accumulate) {
  GemmTileRowsOf<false>(kc, ap, 1, kMr, bp, kNr, c, ldc, m, n, accumulate);
}

void GemmTileInPlace(size_t kc, const float* a, size_t a_row, size_t a_k, const float* b, size_t b_k, float* c,
                     size_t ldc, size_t m, size_t n, int accumulate) {
  GemmTileRowsOf<true>(kc, a, a_row, a_k, b, b_k, c, ldc, m, n, accumulate);
}

void GemmRow(size_t kc, const float* a, size_t a_step, const float* bp, float* c, size_t n, int accumulate) {
  for (size_t j = 0; j < n; j += kNr) {
    GemmTileRows<1, false>(kc, a, 0, a_step, bp + j * kc, kNr, c + j, 0, n - j < kNr ? n - j : kNr, accumulate);
  }
}

void PackRows(const float* src, size_t ld, size_t rows, size_t cols, size_t width, float* dst) {
  for (size_t k = 0; k < rows; ++k)
    for (size_t j = 0; j < width; ++j) dst[k * width + j] = j < cols ? src[k * ld + j] : 0.0f;
}

void PackTransposed(const float* src, size_t ld, size_t rows, size_t len, size_t width, float* dst) {
  for (size_t k = 0; k < len; ++k) {
    float* d = dst + k * width;
    for (size_t i = 0; i < rows; ++i) d[i] = src[i * ld + k];
  }
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

double SquaredNorm(const float* x, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return sum;
}

bool Finite(const float* x, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return false;
  return true;
}

bool AxpySwap(float* y, float* x, float alpha, size_t n) {
  bool finite = true;
  for (size_t i = 0; i < n; ++i) {
    const float old = y[i];
    y[i] = old + alpha * x[i];
    x[i] = old;
    finite &= std::isfinite(y[i]);
  }
  return finite;
}

// The stateful rules of kernels.h in plain float arithmetic, one element at a time.
template <StatefulRule kRule, bool kWrite>
bool StatefulPass(const RuleCoefficients& c, float* p, const float* g, float* s1, float* s2, size_t n) {
  bool finite = true;
  for (size_t i = 0; i < n; ++i) {
    const float gi = c.k * g[i];
    float np, ns1, ns2 = 0.0f;
    if constexpr (kRule == StatefulRule::kMomentum || kRule == StatefulRule::kNesterov) {
      ns1 = c.momentum * s1[i] + gi;
      np = p[i] - c.lr * (kRule == StatefulRule::kMomentum ? ns1 : gi + c.momentum * ns1);
    } else if constexpr (kRule == StatefulRule::kAdagrad || kRule == StatefulRule::kRmsprop) {
      ns1 = kRule == StatefulRule::kAdagrad ? s1[i] + gi * gi : c.rho * s1[i] + (1.0f - c.rho) * gi * gi;
      np = p[i] - c.lr * gi / (std::sqrt(ns1) + c.eps);
    } else {
      ns1 = c.beta1 * s1[i] + (1.0f - c.beta1) * gi;
      ns2 = c.beta2 * s2[i] + (1.0f - c.beta2) * gi * gi;
      np = p[i] - c.lr * (ns1 * c.c1) / (std::sqrt(ns2 * c.c2) + c.eps);
    }
    if constexpr (kWrite) {
      p[i] = np;
      s1[i] = ns1;
      if constexpr (kRule == StatefulRule::kAdam) s2[i] = ns2;
    } else {
      finite &= std::isfinite(np) & std::isfinite(ns1) & std::isfinite(ns2);
    }
  }
  return finite;
}

template <StatefulRule kRule>
bool StatefulPassOf(const RuleCoefficients& c, bool write, float* p, const float* g, float* s1, float* s2, size_t n) {
  return write ? StatefulPass<kRule, true>(c, p, g, s1, s2, n) : StatefulPass<kRule, false>(c, p, g, s1, s2, n);
}

bool Stateful(const RuleCoefficients& c, bool write, float* p, const float* g, float* s1, float* s2, size_t n) {
  switch (c.rule) {
    case StatefulRule::kMomentum: return StatefulPassOf<StatefulRule::kMomentum>(c, write, p, g, s1, s2, n);
    case StatefulRule::kNesterov: return StatefulPassOf<StatefulRule::kNesterov>(c, write, p, g, s1, s2, n);
    case StatefulRule::kAdagrad: return StatefulPassOf<StatefulRule::kAdagrad>(c, write, p, g, s1, s2, n);
    case StatefulRule::kRmsprop: return StatefulPassOf<StatefulRule::kRmsprop>(c, write, p, g, s1, s2, n);
    case StatefulRule::kAdam: return StatefulPassOf<StatefulRule::kAdam>(c, write, p, g, s1, s2, n);
  }
  return false;
}

const KernelSet kSet{"scalar", kMr, kNr, GemmTile, GemmTileInPlace, GemmRow, PackRows, PackTransposed, Tanh, Xent, Softmax, SquaredNorm, Finite, AxpySwap, Stateful};

}  // namespace

const KernelSet& scalar_kernels() { return kSet; }

}  // namespace kernels
}  // namespace bptt
