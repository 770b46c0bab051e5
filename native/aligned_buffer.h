// 64-byte aligned, grow-only scratch memory: reallocates only when a call needs more than it
// holds, so steady-state training allocates nothing. Throws std::bad_alloc when memory runs out.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <utility>

namespace bptt {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& other) noexcept : data_(other.data_), capacity_(other.capacity_) {
    other.data_ = nullptr;
    other.capacity_ = 0;
  }
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(capacity_, other.capacity_);
    return *this;
  }
  ~AlignedBuffer() { std::free(data_); }

  float* floats(size_t n) { return static_cast<float*>(reserve(std::max<size_t>(n, 1) * sizeof(float))); }
  double* doubles(size_t n) { return static_cast<double*>(reserve(std::max<size_t>(n, 1) * sizeof(double))); }
  template <class T>
  T* as(size_t n) {
    return static_cast<T*>(reserve(std::max<size_t>(n, 1) * sizeof(T)));
  }
  // What the last request returned (null before any).
  template <class T>
  T* get() const {
    return static_cast<T*>(data_);
  }
  size_t capacity_bytes() const { return capacity_; }
  // Returns the memory to the system (the next request allocates again).
  void release() {
    std::free(data_);
    data_ = nullptr;
    capacity_ = 0;
  }

 private:
  void* reserve(size_t bytes) {
    if (bytes > capacity_) {
      const size_t rounded = (bytes + 63) / 64 * 64;
      void* fresh = std::aligned_alloc(64, rounded);
      if (fresh == nullptr) throw std::bad_alloc();
      std::free(data_);
      data_ = fresh;
      capacity_ = rounded;
    }
    return data_;
  }
  void* data_ = nullptr;
  size_t capacity_ = 0;
};

}  // namespace bptt
