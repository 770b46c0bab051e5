// Cache-blocked, packed single-precision GEMM (BLIS-style): the portable blocking and packing
// algorithm, with the register-tile product delegated to the active ISA's microkernel.
#pragma once

#include <cstddef>
#include <vector>

#include "kernels/kernels.h"

namespace bptt {

class ThreadPool;

enum class Trans { kNo, kYes };

// What happens to each finished C block after its last K block, while it is still in cache.
struct Epilogue {
  enum class Kind { kNone, kTanh, kTanhGradient, kBias };
  Kind kind = Kind::kNone;
  // kTanhGradient: C *= 1 - s^2, with s = tanh_out laid out like C (same row stride): the BPTT
  // step dpre = (e + dpre_next W) * tanh'(pre), applied by the thread that computed the block.
  // kBias: C[i][j] += bias[j], a layer's bias added while the block is in cache (filling C with
  // it first would stream all of C through memory once more).
  const float* operand = nullptr;

  static Epilogue None() { return {}; }
  static Epilogue Tanh() { return {Kind::kTanh, nullptr}; }
  static Epilogue TanhGradient(const float* tanh_out) { return {Kind::kTanhGradient, tanh_out}; }
  static Epilogue Bias(const float* bias) { return {Kind::kBias, bias}; }
};

struct MatrixRef {
  const float* data;
  size_t ld;    // row stride of the matrix as stored (row-major)
  Trans trans;  // kYes: the operand is the transpose of the stored matrix
  // Stored rows in groups of `group`, whose first rows lie group_ld floats apart: row r is at
  // data + (r / group) * group_ld + (r % group) * ld. A batch shard's rows of [T, B, D] inputs
  // are read in place this way (group = its rows per step, group_ld = B * D). 0: one group.
  // Only an untransposed operand may be grouped.
  size_t group = 0;
  size_t group_ld = 0;
};

// C[M x N] (row stride ldc) = (accumulate ? C : 0) + op(A)[M x K] * op(B)[K x N], then epilogue.
// K == 0 leaves C as accumulate says (zeroed or unchanged) and still applies the epilogue.
// pool may be null (single-threaded). Results are bitwise identical for any thread count.
void gemm(const kernels::KernelSet& ks, ThreadPool* pool, size_t M, size_t N, size_t K,
          MatrixRef A, MatrixRef B, float* C, size_t ldc, bool accumulate,
          Epilogue epilogue = Epilogue::None());

// op(B) [K x N] packed once into the microkernel's panel layout, for products repeated with the
// same right-hand operand (the recurrent weight in every time step).
class PackedB {
 public:
  PackedB() = default;
  // Reuses its storage when the new matrix fits (no allocation in steady state).
  void pack(const kernels::KernelSet& ks, size_t K, size_t N, MatrixRef B);
  size_t rows() const { return k_; }
  size_t cols() const { return n_; }

 private:
  friend void gemm_packed(const kernels::KernelSet&, ThreadPool*, size_t, MatrixRef,
                          const PackedB&, float*, size_t, bool, Epilogue);
  size_t k_ = 0, n_ = 0;
  int nr_ = 0;
  std::vector<float> storage_;  // over-allocated; data() aligned to 64 bytes at use
  size_t offset_ = 0;           // floats from storage_.data() to the first aligned element
};

// As gemm(), with op(B) already packed.
void gemm_packed(const kernels::KernelSet& ks, ThreadPool* pool, size_t M, MatrixRef A,
                 const PackedB& B, float* C, size_t ldc, bool accumulate,
                 Epilogue epilogue = Epilogue::None());

}  // namespace bptt
