// The addon's own C++ failures, each becoming a coded JS error at the boundary (napi_guard.h).
#pragma once

#include <stdexcept>

namespace bptt {

// A loss, gradient or update that is NaN or infinite: nothing was written (JS: code
// BPTT_NON_FINITE, NonFiniteError in TS).
class NonFiniteGradient : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Memory or a model that an asynchronous job is using (JS: code BPTT_IN_USE, TensorInUseError).
class InUse : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace bptt
