// The cells' pointwise rows with AVX-512 vectors (compiled with -mavx512f; chosen at run time only
// where supported, see cell_kernels.h).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cell_kernels.h"

namespace bptt {
namespace engine {
namespace {

#include "../kernels/vec512.inl"

using V = V512;
// vector_math.inl is written for namespace kernels (its optimizer rules use types from kernels.h).
using namespace kernels;
#include "../kernels/vector_math.inl"
#include "cell_rows.inl"

const CellKernels kCellKernels = MakeCellKernels<V>();

}  // namespace

const CellKernels& avx512_cell_kernels() { return kCellKernels; }

}  // namespace engine
}  // namespace bptt
