#include "bindings.h"

namespace bptt {

void InitBenchBindings(Napi::Env, Napi::Object) {}

}  // namespace bptt
