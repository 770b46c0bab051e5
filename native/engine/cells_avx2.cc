// The cells' pointwise rows with AVX2 vectors (compiled with -mavx2 -mfma; chosen at run time only
// where supported, see cell_kernels.h).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cell_kernels.h"

namespace bptt {
namespace engine {
namespace {

#include "../kernels/vec256.inl"

using V = V256;
// vector_math.inl is written for namespace kernels (its optimizer rules use types from kernels.h).
using namespace kernels;
#include "../kernels/vector_math.inl"
#include "cell_rows.inl"

const CellKernels kCellKernels = MakeCellKernels<V>();

}  // namespace

const CellKernels& avx2_cell_kernels() { return kCellKernels; }

}  // namespace engine
}  // namespace bptt
