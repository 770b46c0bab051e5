// The portable interface every ISA-specific microkernel set implements.
//
// The algorithm (GEMM blocking, packing, the RNN recurrences) lives in portable code; only the
// innermost register-tile product and the transcendental row operations are written per ISA.
// Each ISA's implementation is compiled in its own translation unit with its own -m flags and
// must not define or instantiate anything with external linkage other than its accessor below
// (inline functions or templates shared with other translation units could be emitted with wider
// instructions and picked by the linker for scalar callers).
#pragma once

#include <cstddef>
#include <cstdint>

namespace bptt {
namespace kernels {

// C[m x n] (row stride ldc) = or += Ap * Bp for one register tile, m <= mr, n <= nr.
// Ap: packed A panel, kc groups of mr floats (column k of the tile's rows; entries past m are
// unspecified and never read).
// Bp: packed B panel, kc groups of nr floats (row k of the tile's columns, zero padded to nr),
// 64-byte aligned.
// accumulate != 0 adds into C; otherwise C is overwritten (C's previous contents are ignored,
// even NaN). Edge tiles (m < mr or n < nr) are handled here, never by padding C.
using GemmMicrokernelFn = void (*)(size_t kc, const float* ap, const float* bp, float* c, size_t ldc, size_t m,
                                   size_t n, int accumulate);

// gemm_tile on operands read where they are stored, for products too small to repay packing (the
// copies would cost about as much as the product): A's element (i, k) at a[i * a_row + k * a_k],
// B's row k at b + k * b_k with only its first n columns read (b_k = nr for a packed B panel). C
// as in gemm_tile. Gives the same bits as gemm_tile on the packed operands.
using GemmTileInPlaceFn = void (*)(size_t kc, const float* a, size_t a_row, size_t a_k, const float* b, size_t b_k,
                                   float* c, size_t ldc, size_t m, size_t n, int accumulate);

// One row of C (+)= one row of A times a whole packed B block: c[0, n) (+)= sum over k < kc of
// a[k * a_step] * B[k][0, n), B in nr-column panels of kc rows each (panel p at bp + p * kc * nr).
// Gives the same bits as gemm_tile with m = 1 over each panel.
using GemmRowFn = void (*)(size_t kc, const float* a, size_t a_step, const float* bp, float* c, size_t n,
                           int accumulate);

// The copying pack: dst[k * width + j] = src[k * ld + j] for k < rows, j < cols, and 0 for
// cols <= j < width. Packs transposed A panels and panels of B as stored.
using PackRowsFn = void (*)(const float* src, size_t ld, size_t rows, size_t cols, size_t width, float* dst);

// The transposing pack: dst[k * width + i] = src[i * ld + k] for i < rows, k < len; entries
// rows <= i < width are not written. Packs row-major A panels and panels of a transposed B.
using PackTransposedFn = void (*)(const float* src, size_t ld, size_t rows, size_t len, size_t width, float* dst);

// The optimizers that keep state, per element, with g the gradient times the clipping factor k:
//   momentum  v = momentum s1 + g;                  p -= lr v                      (s1 = v)
//   nesterov  v = momentum s1 + g;                  p -= lr (g + momentum v)       (s1 = v)
//   adagrad   s = s1 + g^2;                         p -= lr g / (sqrt(s) + eps)    (s1 = s)
//   rmsprop   s = rho s1 + (1 - rho) g^2;           p -= lr g / (sqrt(s) + eps)    (s1 = s)
//   adam      m = beta1 s1 + (1 - beta1) g;  v = beta2 s2 + (1 - beta2) g^2;
//             p -= lr (m c1) / (sqrt(v c2) + eps)  (s1 = m, s2 = v; c1, c2 the bias corrections)
enum class StatefulRule { kMomentum, kNesterov, kAdagrad, kRmsprop, kAdam };

struct RuleCoefficients {
  StatefulRule rule;
  float lr, k, momentum, rho, beta1, beta2, c1, c2, eps;
};

struct KernelSet {
  const char* isa;  // "scalar", "avx2", "avx512"
  int mr;           // register tile rows
  int nr;           // register tile columns
  GemmMicrokernelFn gemm_tile;
  GemmTileInPlaceFn gemm_tile_in_place;
  GemmRowFn gemm_row;
  PackRowsFn pack_rows;
  PackTransposedFn pack_transposed;

  // x[i] = tanh(x[i]), for any finite or infinite x; max relative error <= 4e-7 against the
  // float64 tanh over the whole float range (no cancellation near 0).
  void (*tanh_inplace)(float* x, size_t n);

  // One row of the fused output layer. z holds the k logits (bias already added).
  // If target >= 0: returns -log softmax(z)[target] (computed stably in float64-safe fashion:
  // max-subtracted, log-sum-exp) and overwrites z with scale * (softmax(z) - onehot(target)).
  // If target < 0 (ignored position): overwrites z with zeros and returns 0.
  double (*softmax_xent_row)(float* z, size_t k, int32_t target, float scale);

  // z = softmax(z / temperature) in place (used for sampling; temperature > 0).
  void (*softmax_row)(float* z, size_t k, float inv_temperature);

  // sum of x[i]^2 for the gradient's global norm; NaN or infinite exactly when the float64 sum
  // is (a finite x never overflows it).
  double (*sum_squares)(const float* x, size_t n);

  // True when no element is NaN or infinite (input validation of every call).
  bool (*all_finite)(const float* x, size_t n);

  // y[i] += alpha * x[i] (the SGD update), and x[i] = the old y[i]: the gradient is not needed
  // afterwards, and holds what undoes a refused update bit for bit. Returns whether every new y[i]
  // is finite.
  bool (*scaled_add_swap)(float* y, float* x, float alpha, size_t n);

  // One pass of a stateful rule over n elements (s2 only for adam). Without write it stores
  // nothing and returns whether every new p, s1 (and s2) would be finite; with write it stores
  // them and returns true. Both passes compute the same bits, so a checked update writes exactly
  // what was checked.
  bool (*stateful_update)(const RuleCoefficients& c, bool write, float* p, const float* g, float* s1, float* s2,
                          size_t n);
};

const KernelSet& scalar_kernels();
#if defined(BPTT_X86_KERNELS)
const KernelSet& avx2_kernels();
const KernelSet& avx512_kernels();
#endif

}  // namespace kernels
}  // namespace bptt
