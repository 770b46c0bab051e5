// AVX-512F kernels (compiled with -mavx512f; chosen at run time only where supported).
#include <immintrin.h>

#include <utility>

#include "kernels.h"

namespace bptt {
namespace kernels {
namespace {

#include "vec256.inl"

#include "vec512.inl"

using V = V512;
#include "vector_math.inl"

// 8 x 32 register tile: 16 zmm accumulators. Zen 4 retires one 512-bit FMA per cycle with a
// 4-cycle latency, so 16 independent chains keep it busy; per k step a full tile needs two B
// loads and eight broadcasts, well under the load ports' budget.
constexpr int kMr = 8;
constexpr int kNr = 32;
// A single-row pass: 4 vectors (64 columns) x 4 partial sums over k = 16 accumulators.
constexpr int kRowVecs = 4;
// Zen 4 issues two 256-bit FMAs per cycle but one 512-bit FMA.
using VTail = V256;

// The low half of a broadcast vector, for the narrow tail of a single-row product.
inline V256::R ToTail(V512::R x) { return _mm512_castps512_ps256(x); }

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

const KernelSet kSet{"avx512", kMr, kNr, GemmTile, GemmTileInPlace, GemmRow, PackRows, PackTransposed, Tanh, Xent, Softmax, SquaredNorm, Finite, AxpySwap, Stateful};

}  // namespace

const KernelSet& avx512_kernels() { return kSet; }

}  // namespace kernels
}  // namespace bptt
