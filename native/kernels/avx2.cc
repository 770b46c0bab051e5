// AVX2 + FMA kernels (compiled with -mavx2 -mfma; chosen at run time only where supported).
#include <immintrin.h>

#include <utility>

#include "kernels.h"

namespace bptt {
namespace kernels {
namespace {

#include "vec256.inl"

using V = V256;
#include "vector_math.inl"

// 6 x 16 register tile: 12 ymm accumulators + 2 B vectors + 1 broadcast fill 15 of the 16 ymm
// registers; 12 independent FMA chains cover two FMA pipes at 4-cycle latency.
constexpr int kMr = 6;
constexpr int kNr = 16;
// A single-row pass: 2 vectors x 4 partial sums over k = 8 accumulators (of 16 ymm registers).
constexpr int kRowVecs = 2;
// Zen 4 and Intel cores issue 128-bit FMAs no faster than 256-bit ones: tails stay 256-bit.
using VTail = V;

// The tails are as wide as the vectors (see VTail).
inline V256::R ToTail(V256::R x) { return x; }

#include "microkernel.inl"
#include "pack_avx.inl"

void Tanh(float* x, size_t n) { TanhInplace<V>(x, n); }
double Xent(float* z, size_t k, int32_t target, float scale) { return SoftmaxXentRow<V>(z, k, target, scale); }
void Softmax(float* z, size_t k, float inv_t) { SoftmaxRow<V>(z, k, inv_t); }
double SquaredNorm(const float* x, size_t n) { return SumSquares<V>(x, n); }
bool Finite(const float* x, size_t n) { return AllFinite<V>(x, n); }
bool AxpySwap(float* y, float* x, float alpha, size_t n) { return ScaledAddSwap<V>(y, x, alpha, n); }
bool Stateful(const RuleCoefficients& c, bool write, float* p, const float* g, float* s1, float* s2, size_t n) {
  return StatefulUpdate<V>(c, write, p, g, s1, s2, n);
}

const KernelSet kSet{"avx2", kMr, kNr, GemmTile, GemmTileInPlace, GemmRow, PackRows, PackTransposed, Tanh, Xent, Softmax, SquaredNorm, Finite, AxpySwap, Stateful};

}  // namespace

const KernelSet& avx2_kernels() { return kSet; }

}  // namespace kernels
}  // namespace bptt
