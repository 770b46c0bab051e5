#include "bindings.h"

namespace bptt {

void InitRnnBindings(Napi::Env, Napi::Object) {}

}  // namespace bptt
