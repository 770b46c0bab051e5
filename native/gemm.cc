#include "gemm.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include "thread_pool.h"

namespace bptt {
namespace {

// Cache blocking for Zen 4 (32 KiB L1d, 1 MiB L2 per core): a kc x nr slice of B (32 KiB at
// nr = 32) streams through L1 while an mc x kc block of A (~128 KiB) stays in L2, and the
// kc x nc panel of B (~1 MiB) in L2/L3.
constexpr size_t kKc = 256;
constexpr size_t kMcTiles = 16;  // mc = 16 register tiles of rows
constexpr size_t kNc = 1024;
// Below this many multiply-adds (about 10 us of one core) a product runs on one thread: handing
// half of it to another core costs about as much as it saves, and measured C1 (T = 25, B = 1)
// 50-70 % slower on 2 threads than on 1 with a threshold of 2^16.
constexpr size_t kParallelThreshold = size_t{1} << 20;

// Operands at most this many floats are read in place (gemm_tile_in_place) rather than packed:
// they stay in L1/L2 anyway, and for min-char-rnn's products (25-100 rows, K = 24-100) the copies
// cost about as much as the arithmetic. A larger A is packed for contiguous broadcasts, a larger B
// for contiguous, aligned vector loads that do not alias in the cache.
constexpr size_t kInPlaceA = 4096;
constexpr size_t kInPlaceB = 16384;

size_t RoundUp(size_t x, size_t m) { return (x + m - 1) / m * m; }

// Grow-only, 64-byte aligned scratch, one per thread.
class Scratch {
 public:
  ~Scratch() { std::free(data_); }
  float* Get(size_t floats) {
    const size_t bytes = RoundUp(std::max<size_t>(floats, 16) * sizeof(float), 64);
    if (bytes > capacity_) {
      void* fresh = std::aligned_alloc(64, bytes);
      if (fresh == nullptr) throw std::bad_alloc();
      std::free(data_);
      data_ = static_cast<float*>(fresh);
      capacity_ = bytes;
    }
    return data_;
  }

 private:
  float* data_ = nullptr;
  size_t capacity_ = 0;
};

thread_local Scratch t_pack_a;
thread_local Scratch t_pack_b;
thread_local Scratch t_shared_b;  // the caller's: a block of op(B) packed once for all threads

// Where stored row r of X begins (see MatrixRef::group).
const float* RowAt(const MatrixRef& X, size_t r) {
  return X.group == 0 ? X.data + r * X.ld : X.data + r / X.group * X.group_ld + r % X.group * X.ld;
}

// fn(first, count) for the runs of stored rows [r, r + n) that lie evenly spaced in memory.
template <class Fn>
void ForRowRuns(const MatrixRef& X, size_t r, size_t n, Fn&& fn) {
  while (n > 0) {
    const size_t run = X.group == 0 ? n : std::min(n, X.group - r % X.group);
    fn(r, run);
    r += run;
    n -= run;
  }
}

// op(A) rows [r0, r0+mc), columns [k0, k0+kc) into mr-row panels: for each k, mr values.
void PackA(const kernels::KernelSet& ks, const MatrixRef& A, size_t r0, size_t mc, size_t k0, size_t kc,
           float* out) {
  const size_t mr = ks.mr;
  for (size_t p = 0; p < mc; p += mr) {
    const size_t rows = std::min(mr, mc - p);
    float* panel = out + p * kc;
    // Rows of a short last panel are never read by a microkernel: the transposing pack leaves
    // them unwritten.
    if (A.trans == Trans::kYes) {
      ks.pack_rows(A.data + k0 * A.ld + r0 + p, A.ld, kc, rows, mr, panel);
    } else {
      ForRowRuns(A, r0 + p, rows, [&](size_t r, size_t n) {
        ks.pack_transposed(RowAt(A, r) + k0, A.ld, n, kc, mr, panel + (r - r0 - p));
      });
    }
  }
}

// op(B) rows [k0, k0+kc), columns [c0, c0+nc) into nr-column panels: for each k, nr values,
// zero padded (microkernels load whole vectors of B).
void PackB(const kernels::KernelSet& ks, const MatrixRef& B, size_t k0, size_t kc, size_t c0, size_t nc, float* out) {
  const size_t nr = ks.nr;
  for (size_t p = 0; p < nc; p += nr) {
    const size_t cols = std::min(nr, nc - p);
    float* panel = out + p * kc;
    if (B.trans == Trans::kNo) {
      ForRowRuns(B, k0, kc, [&](size_t r, size_t n) {
        ks.pack_rows(RowAt(B, r) + c0 + p, B.ld, n, cols, nr, panel + (r - k0) * nr);
      });
    } else {
      if (cols < nr) std::memset(panel, 0, kc * nr * sizeof(float));  // once, not a short fill per k
      ks.pack_transposed(B.data + (c0 + p) * B.ld + k0, B.ld, cols, kc, nr, panel);
    }
  }
}

// C block [mc x nc] (+)= packed A block * packed B block, tile by tile.
void MacroKernel(const kernels::KernelSet& ks, size_t mc, size_t nc, size_t kc, const float* ap,
                 const float* bp, float* c, size_t ldc, bool accumulate) {
  const size_t mr = ks.mr, nr = ks.nr;
  for (size_t j = 0; j < nc; j += nr) {
    for (size_t i = 0; i < mc; i += mr) {
      ks.gemm_tile(kc, ap + i * kc, bp + j * kc, c + i * ldc + j, ldc, std::min(mr, mc - i),
                   std::min(nr, nc - j), accumulate ? 1 : 0);
    }
  }
}

// The epilogue on the block of C at offset `at` (= row * ldc + column), m x n.
void ApplyEpilogue(const kernels::KernelSet& ks, const Epilogue& epilogue, float* C, size_t at, size_t ldc,
                   size_t m, size_t n) {
  switch (epilogue.kind) {
    case Epilogue::Kind::kNone:
      return;
    case Epilogue::Kind::kTanh:
      for (size_t i = 0; i < m; ++i) ks.tanh_inplace(C + at + i * ldc, n);
      return;
    case Epilogue::Kind::kTanhGradient:
      for (size_t i = 0; i < m; ++i) {
        float* row = C + at + i * ldc;
        const float* s = epilogue.operand + at + i * ldc;
        for (size_t j = 0; j < n; ++j) row[j] *= 1.0f - s[j] * s[j];
      }
      return;
    case Epilogue::Kind::kBias: {
      const float* bias = epilogue.operand + at % ldc;
      for (size_t i = 0; i < m; ++i) {
        float* row = C + at + i * ldc;
        for (size_t j = 0; j < n; ++j) row[j] += bias[j];
      }
      return;
    }
  }
}

// Where the B panels of one (k block, column block) live: packed per call, or pre-packed.
struct BSource {
  const MatrixRef* matrix;  // pack from here when non-null
  const float* packed;      // else the PackedB storage
  size_t packed_cols;       // PackedB's padded column count
};

// Rows [m0, m1) of C's columns [jc, jc + nc) (+)= op(A)'s rows by its columns [pc, pc + kc) times
// the packed B block bp, mc rows of A at a time; the epilogue follows the last K block.
void MultiplyBlock(const kernels::KernelSet& ks, size_t m0, size_t m1, size_t jc, size_t nc, size_t pc, size_t kc,
                   const MatrixRef& A, const float* bp, float* C, size_t ldc, bool accumulate, bool last,
                   const Epilogue& epilogue) {
  const size_t mr = ks.mr, mc_max = kMcTiles * mr;
  float* pack_a = t_pack_a.Get(mc_max * kc);
  for (size_t ic = m0; ic < m1; ic += mc_max) {
    const size_t mc = std::min(mc_max, m1 - ic);
    float* c = C + ic * ldc + jc;
    if (mc == 1) {
      // One row (the recurrent product of a batch of 1): read in place, packing would only copy.
      const bool rows_stored = A.trans == Trans::kNo;
      const float* row = rows_stored ? RowAt(A, ic) + pc : A.data + pc * A.ld + ic;
      ks.gemm_row(kc, row, rows_stored ? 1 : A.ld, bp, c, nc, accumulate ? 1 : 0);
    } else {
      PackA(ks, A, ic, mc, pc, kc, pack_a);
      MacroKernel(ks, mc, nc, kc, pack_a, bp, c, ldc, accumulate);
    }
    if (last) ApplyEpilogue(ks, epilogue, C, ic * ldc + jc, ldc, mc, nc);
  }
}

// Rows [m0, m1) and columns [n0, n1) of a product with one K block (K <= kKc), A read in place;
// B in place when stored as is and small, else packed once. Tile by tile as MacroKernel, so each
// element of C gets the same bits as from the packed path.
void MultiplyInPlace(const kernels::KernelSet& ks, size_t m0, size_t m1, size_t n0, size_t n1, size_t K,
                     const MatrixRef& A, const BSource& B, float* C, size_t ldc, bool accumulate,
                     const Epilogue& epilogue) {
  const size_t mr = ks.mr, nr = ks.nr, nc = n1 - n0;
  const size_t a_row = A.trans == Trans::kNo ? A.ld : 1, a_k = A.trans == Trans::kNo ? 1 : A.ld;
  const float* a = A.trans == Trans::kNo ? A.data + m0 * A.ld : A.data + m0;
  const float* b;
  size_t b_k, b_panel;  // B's row stride, and the distance between its nr-column panels
  if (B.matrix == nullptr) {
    b = B.packed + n0 * K;
    b_k = nr;
    b_panel = nr * K;
  } else if (B.matrix->trans == Trans::kNo && B.matrix->group == 0 && K * nc <= kInPlaceB) {
    b = B.matrix->data + n0;
    b_k = B.matrix->ld;
    b_panel = nr;
  } else {
    float* packed = t_pack_b.Get(RoundUp(nc, nr) * K);
    PackB(ks, *B.matrix, 0, K, n0, nc, packed);
    b = packed;
    b_k = nr;
    b_panel = nr * K;
  }
  for (size_t j = 0; j < nc; j += nr) {
    for (size_t i = 0; i < m1 - m0; i += mr) {
      ks.gemm_tile_in_place(K, a + i * a_row, a_row, a_k, b + j / nr * b_panel, b_k, C + (m0 + i) * ldc + n0 + j, ldc,
                            std::min(mr, m1 - m0 - i), std::min(nr, nc - j), accumulate ? 1 : 0);
    }
  }
  ApplyEpilogue(ks, epilogue, C, m0 * ldc + n0, ldc, m1 - m0, nc);
}

// The blocked algorithm on rows [m0, m1) and columns [n0, n1) of C, one thread.
void GemmRange(const kernels::KernelSet& ks, size_t m0, size_t m1, size_t n0, size_t n1, size_t K,
               const MatrixRef& A, const BSource& B, float* C, size_t ldc, bool accumulate,
               const Epilogue& epilogue) {
  if (m0 >= m1 || n0 >= n1) return;
  if (K == 0) {
    for (size_t i = m0; i < m1; ++i) {
      if (!accumulate) std::fill(C + i * ldc + n0, C + i * ldc + n1, 0.0f);
    }
    ApplyEpilogue(ks, epilogue, C, m0 * ldc + n0, ldc, m1 - m0, n1 - n0);
    return;
  }
  if (K <= kKc && n1 - n0 <= kNc) {
    if (m1 - m0 == 1 && B.matrix == nullptr) {
      // One row times a prepacked B (a recurrence step of a batch of 1), as MultiplyBlock would
      // but without its packing scratch: a thread_local in a shared library costs a
      // __tls_get_addr call per use, and this runs once per time step.
      const bool rows_stored = A.trans == Trans::kNo;
      const float* row = rows_stored ? RowAt(A, m0) : A.data + m0;
      ks.gemm_row(K, row, rows_stored ? 1 : A.ld, B.packed + n0 * K, C + m0 * ldc + n0, n1 - n0, accumulate ? 1 : 0);
      ApplyEpilogue(ks, epilogue, C, m0 * ldc + n0, ldc, 1, n1 - n0);
      return;
    }
    if ((m1 - m0) * K <= kInPlaceA && A.group == 0) {
      MultiplyInPlace(ks, m0, m1, n0, n1, K, A, B, C, ldc, accumulate, epilogue);
      return;
    }
  }
  float* pack_b = B.matrix ? t_pack_b.Get(RoundUp(std::min(n1 - n0, kNc), ks.nr) * std::min(K, kKc)) : nullptr;
  for (size_t jc = n0; jc < n1; jc += kNc) {
    const size_t nc = std::min(kNc, n1 - jc);
    for (size_t pc = 0; pc < K; pc += kKc) {
      const size_t kc = std::min(kKc, K - pc);
      const float* bp;
      if (B.matrix) {
        PackB(ks, *B.matrix, pc, kc, jc, nc, pack_b);
        bp = pack_b;
      } else {
        bp = B.packed + pc * B.packed_cols + jc * kc;
      }
      MultiplyBlock(ks, m0, m1, jc, nc, pc, kc, A, bp, C, ldc, accumulate || pc > 0, pc + kc == K, epilogue);
    }
  }
}

// Splits C into one block per thread: columns (in whole register tiles) when there are enough,
// else rows. Each element of C is computed by exactly one thread in the same order as on one
// thread, so results do not depend on the thread count.
void GemmParallel(const kernels::KernelSet& ks, ThreadPool* pool, size_t M, size_t N, size_t K,
                  const MatrixRef& A, const BSource& B, float* C, size_t ldc, bool accumulate,
                  const Epilogue& epilogue) {
  const size_t threads = pool ? pool->num_threads() : 1;
  if (threads <= 1 || M * N * std::max<size_t>(K, 1) < kParallelThreshold) {
    GemmRange(ks, 0, M, 0, N, K, A, B, C, ldc, accumulate, epilogue);
    return;
  }
  const size_t col_tiles = (N + ks.nr - 1) / ks.nr;
  const size_t row_tiles = (M + ks.mr - 1) / ks.mr;
  // A prepacked B (the recurrent weight) is split by columns: each core then keeps its share of
  // it in cache across all the time steps. A B packed per call is split by rows: the threads
  // pack it once together below, where a column split would have every thread pack all of A.
  const bool by_columns = B.matrix == nullptr ? col_tiles >= threads || col_tiles >= row_tiles
                                              : row_tiles < threads && col_tiles > row_tiles;
  const size_t tiles = by_columns ? col_tiles : row_tiles;
  const size_t tasks = std::min(threads, tiles);
  if (!by_columns && B.matrix != nullptr && K > 0) {
    // Split by rows, every thread would pack all of op(B). Instead, block by block, the threads
    // pack it together (each a range of column panels) and then all multiply from that copy.
    const size_t nr = ks.nr;
    float* shared = t_shared_b.Get(RoundUp(std::min(N, kNc), nr) * std::min(K, kKc));
    for (size_t jc = 0; jc < N; jc += kNc) {
      const size_t nc = std::min(kNc, N - jc), panels = (nc + nr - 1) / nr;
      for (size_t pc = 0; pc < K; pc += kKc) {
        const size_t kc = std::min(kKc, K - pc);
        auto pack = [&](size_t task, size_t count) {
          const size_t c0 = panels * task / count * nr, c1 = std::min(nc, panels * (task + 1) / count * nr);
          if (c0 < c1) PackB(ks, *B.matrix, pc, kc, jc + c0, c1 - c0, shared + c0 * kc);
        };
        pool->parallel_for(tasks, pack);
        auto multiply = [&](size_t task, size_t count) {
          const size_t m0 = std::min(M, tiles * task / count * ks.mr), m1 = std::min(M, tiles * (task + 1) / count * ks.mr);
          if (m0 < m1) MultiplyBlock(ks, m0, m1, jc, nc, pc, kc, A, shared, C, ldc, accumulate || pc > 0, pc + kc == K, epilogue);
        };
        pool->parallel_for(tasks, multiply);
      }
    }
    return;
  }
  auto body = [&](size_t task, size_t count) {
    const size_t t0 = tiles * task / count, t1 = tiles * (task + 1) / count;
    if (by_columns) {
      GemmRange(ks, 0, M, std::min(N, t0 * ks.nr), std::min(N, t1 * ks.nr), K, A, B, C, ldc, accumulate, epilogue);
    } else {
      GemmRange(ks, std::min(M, t0 * ks.mr), std::min(M, t1 * ks.mr), 0, N, K, A, B, C, ldc, accumulate, epilogue);
    }
  };
  pool->parallel_for(tasks, body);
}

}  // namespace

void gemm(const kernels::KernelSet& ks, ThreadPool* pool, size_t M, size_t N, size_t K,
          MatrixRef A, MatrixRef B, float* C, size_t ldc, bool accumulate, Epilogue epilogue) {
  if ((A.group != 0 && A.trans == Trans::kYes) || (B.group != 0 && B.trans == Trans::kYes))
    throw std::logic_error("gemm: only an untransposed operand may have grouped rows");
  if (M == 0 || N == 0) return;
  const BSource source{&B, nullptr, 0};
  GemmParallel(ks, pool, M, N, K, A, source, C, ldc, accumulate, epilogue);
}

void PackedB::pack(const kernels::KernelSet& ks, size_t K, size_t N, MatrixRef B) {
  k_ = K;
  n_ = N;
  nr_ = ks.nr;
  const size_t cols = RoundUp(N, nr_);
  const size_t floats = cols * K + 16;
  if (storage_.size() < floats) storage_.resize(floats);
  const uintptr_t address = reinterpret_cast<uintptr_t>(storage_.data());
  offset_ = (RoundUp(address, 64) - address) / sizeof(float);
  float* base = storage_.data() + offset_;
  // Same layout GemmRange packs per call: k blocks of kKc, each a run of nr-column panels.
  for (size_t pc = 0; pc < K; pc += kKc) {
    const size_t kc = std::min(kKc, K - pc);
    PackB(ks, B, pc, kc, 0, N, base + pc * cols);
  }
}

void gemm_packed(const kernels::KernelSet& ks, ThreadPool* pool, size_t M, MatrixRef A,
                 const PackedB& B, float* C, size_t ldc, bool accumulate, Epilogue epilogue) {
  if (B.nr_ != ks.nr) throw std::logic_error("gemm_packed: B was packed for another microkernel");
  if (A.group != 0 && A.trans == Trans::kYes) throw std::logic_error("gemm: only an untransposed operand may have grouped rows");
  if (M == 0 || B.n_ == 0) return;
  const BSource source{nullptr, B.storage_.data() + B.offset_, RoundUp(B.n_, B.nr_)};
  GemmParallel(ks, pool, M, B.n_, B.k_, A, source, C, ldc, accumulate, epilogue);
}

}  // namespace bptt
