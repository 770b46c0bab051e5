#include "bindings.h"

namespace bptt {

void InitKernelBindings(Napi::Env, Napi::Object) {}

}  // namespace bptt
