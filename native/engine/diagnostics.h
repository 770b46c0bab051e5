// Spectra of recurrent blocks for the gradient diagnostics, in double: every eigenvalue of a real
// nonsymmetric matrix (Householder reduction to upper Hessenberg form, then Francis's implicit
// double-shift QR iteration with deflation; complex pairs come out as pairs) and the largest
// singular value by power iteration on A^T A. The TS float64 versions (lib/diagnostics/
// spectral.ts) are their specification.
#pragma once

#include <cstddef>
#include <vector>

namespace bptt {
namespace engine {

// Eigenvalues of a [n, n] (row-major) as n (re, im) pairs in `out` (2n doubles). False if the
// QR iteration did not converge (it does for any finite matrix in practice).
bool eigenvalues(const double* a, size_t n, double* out);

// The largest singular value of a [rows, cols], by power iteration on a^T a from a fixed start,
// until the estimate moves by at most `tolerance` (relative) or after `max_iterations`.
double largest_singular_value(const double* a, size_t rows, size_t cols, double tolerance, size_t max_iterations);

}  // namespace engine
}  // namespace bptt
