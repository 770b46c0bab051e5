// The cell table, the portable (one-lane) instantiation of the pointwise rows, and the choice of
// the rows' ISA.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cell_kernels.h"

namespace bptt {
namespace engine {
namespace {

// One-lane traits in the vocabulary of vector_math.inl: the scalar ISA runs the same formulas as
// the vector ones, a unit at a time. Max and Min follow the SIMD instructions (with a NaN, the
// second operand); Fma is a multiply and an add (a fused one is a library call without the
// instruction).
struct V1 {
  using R = float;
  using M = bool;
  static constexpr size_t kWidth = 1;
  static R Set1(float x) { return x; }
  static R Load(const float* p) { return *p; }
  static void Store(float* p, R v) { *p = v; }
  static R LoadPartial(const float* p, size_t n, float fill) { return n > 0 ? *p : fill; }
  static void StorePartial(float* p, size_t n, R v) {
    if (n > 0) *p = v;
  }
  static R KeepFirst(R v, size_t n) { return n > 0 ? v : 0.0f; }
  static R Add(R a, R b) { return a + b; }
  static R Sub(R a, R b) { return a - b; }
  static R Mul(R a, R b) { return a * b; }
  static R Div(R a, R b) { return a / b; }
  static R Sqrt(R a) { return std::sqrt(a); }
  static R Fma(R a, R b, R c) { return a * b + c; }
  static R Max(R a, R b) { return a > b ? a : b; }
  static R Min(R a, R b) { return a < b ? a : b; }
  static R Abs(R a) { return std::fabs(a); }
  static M Less(R a, R b) { return a < b; }
  static M IsNan(R a) { return std::isnan(a); }
  static R Select(M m, R if_true, R if_false) { return m ? if_true : if_false; }
  static R RoundNearest(R a) { return std::nearbyint(a); }
  static R ScaleByPow2(R x, R n) { return std::ldexp(x, static_cast<int>(n)); }
  static R CopySign(R magnitude, R sign) { return std::copysign(magnitude, sign); }
  static float HorizontalSum(R v) { return v; }
  static float HorizontalMax(R v) { return v; }
};

using V = V1;
// vector_math.inl is written for namespace kernels (its optimizer rules use types from kernels.h).
using namespace kernels;
#include "../kernels/vector_math.inl"
#include "cell_rows.inl"

const CellKernels kScalarCellKernels = MakeCellKernels<V>();

const CellInfo kCells[] = {
    {"tanh", 1, false, false, false},
    {"relu", 1, false, false, false},
    {"lstm", 4, true, true, false},
    {"gru", 3, false, true, true},
};

}  // namespace

const CellInfo& cell_info(CellKind kind) { return kCells[static_cast<int>(kind)]; }

bool parse_cell(const char* name, CellKind* out) {
  for (int k = 0; k < 4; ++k) {
    if (std::strcmp(name, kCells[k].name) == 0) {
      *out = static_cast<CellKind>(k);
      return true;
    }
  }
  return false;
}

const CellKernels& scalar_cell_kernels() { return kScalarCellKernels; }

const CellKernels& cell_kernels(const kernels::KernelSet& ks) {
#if defined(BPTT_X86_KERNELS)
  // Only addresses are compared: nothing of an ISA runs unless its KernelSet is the active one.
  if (&ks == &kernels::avx512_kernels()) return avx512_cell_kernels();
  if (&ks == &kernels::avx2_kernels()) return avx2_cell_kernels();
#endif
  return scalar_cell_kernels();
}

void cell_forward(const kernels::KernelSet& ks, CellKind kind, const CellForward& step) {
  cell_kernels(ks).forward[static_cast<int>(kind)](step);
}

void cell_backward(const kernels::KernelSet& ks, CellKind kind, const CellBackward& step) {
  cell_kernels(ks).backward[static_cast<int>(kind)](step);
}

}  // namespace engine
}  // namespace bptt
