// The cells' pointwise functions per ISA: one template (cell_rows.inl) over the vector traits of
// the GEMM kernels, instantiated in cells_avx2.cc and cells_avx512.cc with their own -m flags and
// in cells.cc with one-lane scalar traits. cell_kernels() picks the table that matches the active
// KernelSet, so the cells and the products always run on the same ISA.
//
// The ISA translation units define nothing with external linkage but their accessor (see the
// linkage note in kernels/kernels.h).
#pragma once

#include "../kernels/kernels.h"
#include "cell.h"

namespace bptt {
namespace engine {

struct CellKernels {
  // Indexed by CellKind.
  void (*forward[4])(const CellForward& step);
  void (*backward[4])(const CellBackward& step);
};

const CellKernels& scalar_cell_kernels();
#if defined(BPTT_X86_KERNELS)
const CellKernels& avx2_cell_kernels();
const CellKernels& avx512_cell_kernels();
#endif

// The table for the ISA of `ks` (a KernelSet the kernels module made).
const CellKernels& cell_kernels(const kernels::KernelSet& ks);

}  // namespace engine
}  // namespace bptt
