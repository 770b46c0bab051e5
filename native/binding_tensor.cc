#include "bindings.h"

namespace bptt {

void InitTensorBindings(Napi::Env, Napi::Object) {}

}  // namespace bptt
