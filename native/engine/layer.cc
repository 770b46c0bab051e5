#include "layer.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "../parallel.h"
#include "profile.h"

namespace bptt {
namespace engine {

size_t LayerSpec::parameter_size(size_t p) const {
  const size_t l = p / (directions() * 4);
  const size_t gh = gates() * hidden;
  switch (p % 4) {
    case 0: return gh * layer_input(l);
    case 1: return gh * hidden;
    default: return gh;
  }
}

std::string LayerSpec::parameter_name(size_t p) const {
  static const char* const kKinds[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
  const size_t dirs = directions();
  return std::string(kKinds[p % 4]) + "_l" + std::to_string(p / (dirs * 4)) + ((p / 4) % dirs == 1 ? "_reverse" : "");
}

bool LayerSpec::operator==(const LayerSpec& o) const {
  return cell == o.cell && input == o.input && hidden == o.hidden && layers == o.layers &&
         bidirectional == o.bidirectional && dropout == o.dropout;
}

namespace {

uint32_t Fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

size_t ChunkSteps(size_t steps, size_t batch, size_t rows) {
  return std::max<size_t>(1, std::min(steps, (rows == 0 ? kBackwardChunkRows : rows) / batch));
}

// One direction of one layer: its time order, and where each batch row's sequence starts and
// ends in it. Index u counts steps in the order the forward recurrence runs them, so the driver
// is written once for both directions; t(u) is the time step.
struct Direction {
  size_t steps, batch;
  bool reverse;
  const int32_t* lengths;  // null: every row has `steps` steps

  size_t time(size_t u) const { return reverse ? steps - 1 - u : u; }
  size_t length(size_t b) const { return lengths ? static_cast<size_t>(lengths[b]) : steps; }
  // The row's first step (it starts from h0 there) and last (hT is its state there), as u.
  size_t first_u(size_t b) const { return reverse ? steps - length(b) : 0; }
  size_t last_u(size_t b) const { return reverse ? steps - 1 : length(b) - 1; }
};

// The views of one layer-direction's saved forward values and its weights.
struct LayerDir {
  const LayerSpec& spec;
  size_t l, d, index;  // index = l * dirs + d: its state and its parameters
  Direction dir;
  size_t H, GH, in, width, B, T;
  const float* w_ih;
  const float* w_hh;
  const float* b_ih;
  const float* b_hh;

  LayerDir(const LayerSpec& s, const LayerWeights& w, size_t layer, size_t direction, size_t steps, size_t batch,
           const int32_t* lengths)
      : spec(s), l(layer), d(direction), index(layer * s.directions() + direction),
        dir{steps, batch, direction == 1, lengths}, H(s.hidden), GH(s.gates() * s.hidden), in(s.layer_input(layer)),
        width(s.output_width()), B(batch), T(steps), w_ih(w.w_ih(s, layer, direction)),
        w_hh(w.w_hh(s, layer, direction)), b_ih(w.b_ih(s, layer, direction)), b_hh(w.b_hh(s, layer, direction)) {}
};

// dst = src for n floats, split across threads in large pieces (copies of whole T*B arrays into
// and out of the record; in fresh memory much of their time is page faults, which run in
// parallel too).
void CopyFloats(ThreadPool* pool, float* dst, const float* src, size_t n) {
  ForRows(pool, n, size_t{1} << 18, [&](size_t begin, size_t end) {
    std::memcpy(dst + begin, src + begin, (end - begin) * sizeof(float));
  });
}

// fn(c0, c1) on ranges of whole 64-byte lines of the columns [0, ncols) of a row-major array, one
// range per thread, each through every row in order: a sum over the rows gets its terms in the
// same order whatever the thread count. (The rows are the gate gradients every thread wrote.)
template <class Fn>
void ForColumns(ThreadPool* pool, size_t nrows, size_t ncols, Fn&& fn) {
  constexpr size_t kLine = 16;
  const size_t lines = (ncols + kLine - 1) / kLine;
  const size_t min_lines = std::max<size_t>(1, (size_t{1} << 16) / std::max<size_t>(1, nrows * kLine));
  ForRows(pool, lines, min_lines, [&](size_t l0, size_t l1) { fn(l0 * kLine, std::min(ncols, l1 * kLine)); });
}

// acc[j] += the column sums of rows [nrows x ncols] (ld ncols), in double, rows in order.
void AddColumnSumsParallel(ThreadPool* pool, const float* rows, size_t nrows, size_t ncols, double* acc) {
  ForColumns(pool, nrows, ncols, [&](size_t c0, size_t c1) { AddColumnSums(rows + c0, nrows, c1 - c0, ncols, acc + c0); });
}

const uint8_t* ActiveRows(const ForwardRecord& r, size_t t, size_t b0) {
  return r.lengths.empty() ? nullptr : r.active.data() + t * r.batch + b0;
}

// Where each step's input projection x_t W_ih^T (without bias: the cells add it) comes from.
struct InputProjection {
  const float* x = nullptr;      // dense rows [T*B, in]: each step multiplies its rows by ws.forward_ih
  const float* table = nullptr;  // tokens: W_ih^T [in, G*H], whose row v the cells add for token v
  // Neither: the projections are in the gate rows already.
};

// Batches from this size on project dense inputs step by step; smaller ones in one product over
// all T*B rows, since a step's few rows would stream all of W_ih^T through the cache for little
// arithmetic (one row: half a multiply-add per byte read).
constexpr size_t kStepProjectionBatch = 16;

// Whether ProjectInputs writes every row's projection into pre at once (small dense batches, and
// token inputs with fewer rows than vocabulary entries) rather than leaving it to each step.
bool ProjectsAllRows(const LayerDir& ld, const ForwardRecord& rec) {
  if (ld.l == 0 && rec.tokens) return ld.T * ld.B < ld.in;
  return ld.B < kStepProjectionBatch;
}

// Dense inputs of large batches are projected step by step, by the thread that owns the rows,
// just before the recurrent product adds to them: the gate rows are then written once while in
// cache, where a product over all T*B rows first would send them to memory and back. Token
// inputs select rows of W_ih^T: with more rows than vocabulary entries it becomes a table the
// cells read, with fewer its columns are gathered into pre.
InputProjection ProjectInputs(const kernels::KernelSet& ks, ThreadPool* pool, const LayerDir& ld,
                              const ForwardRecord& rec, LayerWorkspace& ws, float* pre) {
  profile::PhaseScope timer(profile::Phase::kProject);
  const size_t GH = ld.GH, in = ld.in, rows = ld.T * ld.B;
  InputProjection out;
  const bool all_rows = ProjectsAllRows(ld, rec);
  if (ld.l == 0 && rec.tokens) {
    const int32_t* tokens = rec.token_ids.data();
    if (all_rows) {
      for (size_t r = 0; r < rows; ++r) {
        const float* column = ld.w_ih + tokens[r];
        float* row = pre + r * GH;
        for (size_t g = 0; g < GH; ++g) row[g] = column[g * in];
      }
      return out;
    }
    float* table = ws.token_table.floats(in * GH);
    Transpose(ld.w_ih, GH, in, table);
    out.table = table;
    return out;
  }
  const float* x = rec.layer_input(ld.l);
  if (all_rows) {
    gemm(ks, pool, rows, GH, in, Plain(x, in), Transposed(ld.w_ih, in), pre, GH, false);
    return out;
  }
  ws.forward_ih.pack(ks, in, GH, Transposed(ld.w_ih, in));
  out.x = x;
  return out;
}

// The recurrence of one layer-direction over the rows' steps, from h0/c0 (or zeros), writing the
// outputs, the saved values and the final states. pre holds the gate rows of every step
// [T*B, G*H], or of one step [B, G*H] when pre_per_step (then neither projected at once nor kept).
void RecurForward(const kernels::KernelSet& ks, ThreadPool* pool, const LayerDir& ld, ForwardRecord& rec,
                  LayerWorkspace& ws, float* pre, bool pre_per_step, const InputProjection& input, float* hT,
                  float* cT) {
  const size_t H = ld.H, GH = ld.GH, B = ld.B, width = ld.width;
  const CellInfo& info = cell_info(ld.spec.cell);
  const size_t block = B * H;
  float* h = ws.state_h.floats(block);
  float* c = info.has_cell_state ? ws.state_c.floats(block) : nullptr;
  if (rec.has_h0) {
    std::memcpy(h, rec.h0.get<float>() + ld.index * block, block * sizeof(float));
  } else {
    std::fill(h, h + block, 0.0f);
  }
  if (c != nullptr) {
    if (rec.has_c0) {
      std::memcpy(c, rec.c0.get<float>() + ld.index * block, block * sizeof(float));
    } else {
      std::fill(c, c + block, 0.0f);
    }
  }
  float* recurrent = info.separate_recurrent ? ws.recurrent.floats(B * GH) : nullptr;
  // What the cells add to the products: b_ih + b_hh, or b_ih and b_hh apart.
  const float* bias = ld.b_ih;
  if (!info.separate_recurrent) {
    float* sum = ws.bias.floats(GH);
    for (size_t j = 0; j < GH; ++j) sum[j] = ld.b_ih[j] + ld.b_hh[j];
    bias = sum;
  }
  const int32_t* tokens = input.table ? rec.token_ids.data() : nullptr;
  float* y = rec.outputs[ld.l].get<float>();
  // What the cells keep for backward, one row per step and batch row; an inference pass keeps
  // one step's rows only (saved_step 0: every step writes the same rows).
  const size_t saved_step = rec.inference ? 0 : B;
  float* saved_c = !info.has_cell_state ? nullptr
                   : rec.inference      ? ws.step_cells.floats(block)
                                        : rec.cells[ld.index].get<float>();
  float* saved_hn = !info.separate_recurrent ? nullptr
                    : rec.inference          ? ws.step_hn.floats(block)
                                             : rec.recurrent_n[ld.index].get<float>();
  const size_t gates_step = pre_per_step ? 0 : B;
  ws.forward_hh.pack(ks, H, GH, Transposed(ld.w_hh, H));
  // Per batch row and step: the recurrent product and, for dense inputs, the input projection.
  const size_t row_work = (H + (input.x != nullptr ? ld.in : 0)) * GH;
  ForBatchSlices(ks, pool, ld.T, B, row_work, [&](ThreadPool* inner, size_t b0, size_t b1) {
    const size_t rows = b1 - b0;
    for (size_t u = 0; u < ld.T; ++u) {
      const size_t t = ld.dir.time(u);
      float* gates = pre + (t * gates_step + b0) * GH;
      float* rec_rows = recurrent ? recurrent + b0 * GH : nullptr;
      if (input.x != nullptr) {
        profile::PhaseScope timer(profile::Phase::kProject);
        gemm_packed(ks, inner, rows, Plain(input.x + (t * B + b0) * ld.in, ld.in), ws.forward_ih, gates, GH, false);
      }
      {
        profile::PhaseScope timer(profile::Phase::kRecurGemm);
        // Onto the input projection in the gates, except where the cells read it elsewhere.
        if (recurrent) {
          gemm_packed(ks, inner, rows, Plain(h + b0 * H, H), ws.forward_hh, rec_rows, GH, false);
        } else {
          gemm_packed(ks, inner, rows, Plain(h + b0 * H, H), ws.forward_hh, gates, GH, input.table == nullptr);
        }
      }
      profile::PhaseScope timer(profile::Phase::kPointwise);
      const CellForward step{rows, H, gates, GH, bias, input.table, tokens ? tokens + t * B + b0 : nullptr, rec_rows, ld.b_hh,
                             saved_hn ? saved_hn + (t * saved_step + b0) * H : nullptr,
                             h + b0 * H, c ? c + b0 * H : nullptr,
                             saved_c ? saved_c + (t * saved_step + b0) * H : nullptr,
                             y + (t * B + b0) * width + ld.d * H, width, ActiveRows(rec, t, b0)};
      cell_forward(ks, ld.spec.cell, step);
    }
  });
  // Every row keeps its state from its last step on, so h and c are hT and cT.
  std::memcpy(hT + ld.index * block, h, block * sizeof(float));
  if (cT != nullptr) std::memcpy(cT + ld.index * block, c, block * sizeof(float));
}

// Multiplies the output of layer `boundary` ([T, B, width] rows of the record's batch) by its
// dropout mask (scaled), into dst (may be src). The mask hashes each element's place in the
// batch the caller drops out over, of which the record's rows may be a shard.
void ApplyDropout(ThreadPool* pool, const ForwardRecord& rec, const float* src, float* dst, size_t width, double p,
                  size_t boundary) {
  const uint32_t threshold = static_cast<uint32_t>(p * 4294967296.0);
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  const size_t B = rec.batch, whole = rec.dropout_batch, first = rec.dropout_first_row;
  ForRows(pool, rec.steps * B, std::max<size_t>(1, 65536 / width), [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r) {
      const size_t base = ((r / B) * whole + first + r % B) * width;
      for (size_t j = 0; j < width; ++j) {
        const uint32_t index = static_cast<uint32_t>(base + j);
        const bool keep = DropoutHash(rec.dropout_seed, static_cast<uint32_t>(boundary), index) >= threshold;
        dst[r * width + j] = keep ? src[r * width + j] * scale : 0.0f;
      }
    }
  });
}

// A record's arrays are tens of MiB written once per forward pass, and the layer API makes a
// record per call: in fresh memory each 4 KiB page costs a fault (L2: 13,000 faults and 35 ms
// of kernel time a pass). Transparent huge pages, where the system grants them on request, take
// that to one fault per 2 MiB (L2: 1,200 faults, the step 3 % faster on one thread). The advice
// covers the mapping from its first page (the allocator's header shares it); it changes no data,
// and a refusal changes nothing.
float* HugePages(float* p, size_t floats) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr size_t kMin = size_t{4} << 20, kPage = 4096;
  const size_t bytes = floats * sizeof(float);
  if (bytes >= kMin) {
    const uintptr_t at = reinterpret_cast<uintptr_t>(p), start = at & ~(kPage - 1);
    madvise(reinterpret_cast<void*>(start), bytes + (at - start), MADV_HUGEPAGE);
  }
#endif
  return p;
}

// Copies the call's inputs into the record and sizes its buffers, the large ones from the
// workspace's pool of arrays when their own memory is too small.
void PrepareRecord(ThreadPool* pool, const LayerSpec& spec, const LayerInput& input, LayerWorkspace& ws,
                   ForwardRecord& rec) {
  const size_t T = input.steps, B = input.batch, H = spec.hidden, L = spec.layers, dirs = spec.directions();
  const size_t rows = T * B, GH = spec.gates() * H, states = L * dirs * B * H;
  const CellInfo& info = cell_info(spec.cell);
  rec.valid = false;
  rec.array_pool = ws.record_arrays;
  RecordArrayPool& arrays = *ws.record_arrays;
  // A large array of n floats, from the pool when the record's own is too small.
  auto sized = [&](AlignedBuffer& buffer, size_t n) {
    arrays.Fit(buffer, n * sizeof(float));
    return HugePages(buffer.floats(n), n);
  };
  rec.spec = spec;
  rec.steps = T;
  rec.batch = B;
  rec.tokens = input.tokens != nullptr;
  rec.has_h0 = input.h0 != nullptr;
  rec.has_c0 = input.c0 != nullptr;
  rec.dropout_on = input.training && spec.dropout > 0 && L > 1;
  rec.dropout_seed = input.dropout_seed;
  rec.dropout_first_row = input.dropout_batch == 0 ? 0 : input.dropout_first_row;
  rec.dropout_batch = input.dropout_batch == 0 ? B : input.dropout_batch;
  rec.inference = input.inference;
  rec.input_in_place = nullptr;
  const size_t stride = input.input_batch_stride == 0 ? B : input.input_batch_stride;
  if (rec.tokens) {
    rec.token_ids.resize(rows);
    for (size_t t = 0; t < T; ++t)
      std::memcpy(rec.token_ids.data() + t * B, input.tokens + t * stride, B * sizeof(int32_t));
  } else if (stride == B && rec.inference) {
    rec.input_in_place = input.dense;  // read during this call only
  } else if (stride == B) {
    CopyFloats(pool, sized(rec.dense, rows * spec.input), input.dense, rows * spec.input);
  } else {
    float* dense = sized(rec.dense, rows * spec.input);
    const size_t D = spec.input;
    ForRows(pool, T, 1, [&](size_t t0, size_t t1) {
      for (size_t t = t0; t < t1; ++t) std::memcpy(dense + t * B * D, input.dense + t * stride * D, B * D * sizeof(float));
    });
  }
  if (input.lengths != nullptr) {
    rec.lengths.assign(input.lengths, input.lengths + B);
    rec.active.resize(rows);
    for (size_t t = 0; t < T; ++t)
      for (size_t b = 0; b < B; ++b) rec.active[t * B + b] = t < static_cast<size_t>(rec.lengths[b]) ? 1 : 0;
  } else {
    rec.lengths.clear();
    rec.active.clear();
  }
  if (rec.has_h0) std::memcpy(rec.h0.floats(states), input.h0, states * sizeof(float));
  if (rec.has_c0) std::memcpy(rec.c0.floats(states), input.c0, states * sizeof(float));
  rec.outputs.resize(L);
  rec.dropped.resize(L);
  rec.gates.resize(L * dirs);
  rec.cells.resize(L * dirs);
  rec.recurrent_n.resize(L * dirs);
  for (size_t l = 0; l < L; ++l) {
    sized(rec.outputs[l], rows * dirs * H);
    if (rec.dropout_on && l > 0) sized(rec.dropped[l], rows * dirs * H);
    for (size_t d = 0; d < dirs; ++d) {
      const size_t i = l * dirs + d;
      if (rec.inference) continue;
      if (info.saves_gates) sized(rec.gates[i], rows * GH);
      if (info.has_cell_state) sized(rec.cells[i], rows * H);
      if (info.separate_recurrent) sized(rec.recurrent_n[i], rows * H);
    }
  }
  arrays.NoteRecord(rec.bytes());
}

}  // namespace

void RecordArrayPool::Fit(AlignedBuffer& buffer, size_t bytes) {
  if (buffer.capacity_bytes() >= bytes) return;
  std::lock_guard<std::mutex> lock(mutex_);
  size_t best = arrays_.size();
  for (size_t i = 0; i < arrays_.size(); ++i) {
    const size_t have = arrays_[i].capacity_bytes();
    if (have >= bytes && (best == arrays_.size() || have < arrays_[best].capacity_bytes())) best = i;
  }
  if (best == arrays_.size()) return;
  held_ -= arrays_[best].capacity_bytes();
  buffer = std::move(arrays_[best]);  // swaps: the buffer's own memory is now in arrays_[best]
  arrays_.erase(arrays_.begin() + static_cast<std::ptrdiff_t>(best));
}

void RecordArrayPool::Keep(AlignedBuffer& buffer) {
  if (buffer.capacity_bytes() == 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  held_ += buffer.capacity_bytes();
  arrays_.push_back(std::move(buffer));  // leaves buffer empty
  while (held_ > limit_ && !arrays_.empty()) {
    held_ -= arrays_.front().capacity_bytes();
    arrays_.erase(arrays_.begin());
  }
}

void RecordArrayPool::NoteRecord(size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  limit_ = std::max(limit_, bytes);
}

ForwardRecord::~ForwardRecord() {
  if (array_pool == nullptr) return;
  array_pool->Keep(dense);
  for (auto* list : {&outputs, &dropped, &gates, &cells, &recurrent_n})
    for (AlignedBuffer& b : *list) array_pool->Keep(b);
}

uint32_t DropoutHash(uint32_t seed, uint32_t layer, uint32_t index) {
  return Fmix32(Fmix32(seed ^ ((layer + 1u) * 0x9e3779b9u)) ^ index);
}

const float* ForwardRecord::layer_input(size_t l) const {
  if (l == 0) return tokens ? nullptr : input_in_place != nullptr ? input_in_place : dense.get<float>();
  return dropout_on ? dropped[l].get<float>() : outputs[l - 1].get<float>();
}

size_t ForwardRecord::bytes() const {
  size_t n = token_ids.capacity() * sizeof(int32_t) + lengths.capacity() * sizeof(int32_t) + active.capacity() +
             dense.capacity_bytes() + h0.capacity_bytes() + c0.capacity_bytes();
  for (const auto* list : {&outputs, &dropped, &gates, &cells, &recurrent_n})
    for (const AlignedBuffer& b : *list) n += b.capacity_bytes();
  return n;
}

void layer_forward(const kernels::KernelSet& ks, ThreadPool* pool, const LayerSpec& spec,
                   const LayerWeights& weights, const LayerInput& input, LayerWorkspace& ws,
                   ForwardRecord& rec, const LayerOutputs& out) {
  profile::CallScope timer("forward");
  PrepareRecord(pool, spec, input, ws, rec);
  const size_t T = input.steps, B = input.batch, rows = T * B, width = spec.output_width();
  const CellInfo& info = cell_info(spec.cell);
  for (size_t l = 0; l < spec.layers; ++l) {
    for (size_t d = 0; d < spec.directions(); ++d) {
      const LayerDir ld(spec, weights, l, d, T, B, input.lengths);
      // The gate rows: in the record when backward needs them, else all rows only where they
      // are projected at once.
      const bool kept = info.saves_gates && !rec.inference;
      const bool per_step = !kept && !ProjectsAllRows(ld, rec);
      float* pre = kept ? rec.gates[ld.index].get<float>() : ws.pre.floats((per_step ? B : rows) * ld.GH);
      const InputProjection input_projection = ProjectInputs(ks, pool, ld, rec, ws, pre);
      RecurForward(ks, pool, ld, rec, ws, pre, per_step, input_projection, out.hT, out.cT);
    }
    if (rec.dropout_on && l + 1 < spec.layers) {
      ApplyDropout(pool, rec, rec.outputs[l].get<float>(), rec.dropped[l + 1].get<float>(), width, spec.dropout, l);
    }
  }
  if (out.y != nullptr) CopyFloats(pool, out.y, rec.outputs[spec.layers - 1].get<float>(), rows * width);
  rec.valid = !rec.inference;
  rec.input_in_place = nullptr;
}

namespace {

// What the backward pass of one layer-direction writes, and its running sums.
struct DirGrads {
  float* w_ih;
  float* w_hh;
  float* b_ih;
  float* b_hh;
  double* bias_ih_sums;  // G*H, in double, rows in a fixed order
  double* bias_hh_sums;
  float* first_dgates;   // [B, G*H]: each row's recurrent gate gradient at its first step (for
                         //            the h0 part of dW_hh), or null without h0
  float* token_grads;    // [D, G*H] rows of dW_ih^T for many token rows, else null
};

class DirectionBackward {
 public:
  DirectionBackward(const kernels::KernelSet& ks, ThreadPool* pool, const LayerDir& ld, const ForwardRecord& rec,
                    const LayerUpstream& up, const float* entry, LayerWorkspace& ws, DirGrads& g, float* dx,
                    bool accumulate_dx)
      : ks_(ks), pool_(pool), ld_(ld), rec_(rec), up_(up), entry_(entry), ws_(ws), g_(g), dx_(dx),
        accumulate_dx_(accumulate_dx), info_(cell_info(ld.spec.cell)),
        y_(rec.outputs[ld.l].get<float>()),
        gates_(info_.saves_gates ? rec.gates[ld.index].get<float>() : nullptr),
        cells_(info_.has_cell_state ? rec.cells[ld.index].get<float>() : nullptr),
        hn_(info_.separate_recurrent ? rec.recurrent_n[ld.index].get<float>() : nullptr) {}

  // dh0 / dc0 of this layer-direction (B x H each; dc0 null unless LSTM) receive the gradient of
  // the initial state.
  void Run(float* dh0, float* dc0) {
    ws_.backward_hh.pack(ks_, ld_.GH, ld_.H, Plain(ld_.w_hh, ld_.H));
    if (up_.truncate != 0 && up_.truncate < ld_.T) {
      Truncated(up_.truncate, dh0, dc0);
    } else {
      Full(dh0, dc0);
    }
  }

 private:
  // The gradient entering h_t (and c_t) from outside this layer-direction's recurrence: the
  // upstream output gradient at active steps, plus dhT / dcT at each row's last step.
  void AddEntry(size_t u, size_t b0, size_t b1, float* dh, float* dc) const {
    const size_t t = ld_.dir.time(u), H = ld_.H, B = ld_.B;
    const size_t block = B * H;
    for (size_t b = b0; b < b1; ++b) {
      const bool active = rec_.lengths.empty() || rec_.active[t * B + b];
      if (!active) continue;
      float* dh_row = dh + (b - b0) * H;
      const float* e = entry_ + (t * B + b) * ld_.width + ld_.d * H;
      for (size_t j = 0; j < H; ++j) dh_row[j] += e[j];
      if (u != ld_.dir.last_u(b)) continue;
      if (up_.dhT != nullptr) {
        const float* s = up_.dhT + ld_.index * block + b * H;
        for (size_t j = 0; j < H; ++j) dh_row[j] += s[j];
      }
      if (dc != nullptr && up_.dcT != nullptr) {
        float* dc_row = dc + (b - b0) * H;
        const float* s = up_.dcT + ld_.index * block + b * H;
        for (size_t j = 0; j < H; ++j) dc_row[j] += s[j];
      }
    }
  }

  // The state before step u of rows [b0, b1) (h for GRU, c for LSTM), and its row stride in *ld:
  // the saved rows of the previous step when every row has one, else copies into dst with h0/c0
  // (or zeros) at a row's first step.
  const float* PreviousState(size_t u, size_t b0, size_t b1, const float* saved, size_t saved_ld, size_t saved_offset,
                             const float* initial, float* dst, size_t* ld) const {
    const size_t H = ld_.H, B = ld_.B;
    bool all_saved = true;
    for (size_t b = b0; b < b1 && all_saved; ++b) all_saved = u > ld_.dir.first_u(b);
    if (all_saved) {
      *ld = saved_ld;
      return saved + (ld_.dir.time(u - 1) * B + b0) * saved_ld + saved_offset;
    }
    for (size_t b = b0; b < b1; ++b) {
      float* out = dst + (b - b0) * H;
      if (u == ld_.dir.first_u(b)) {
        if (initial != nullptr) {
          std::memcpy(out, initial + ld_.index * B * H + b * H, H * sizeof(float));
        } else {
          std::fill(out, out + H, 0.0f);
        }
      } else if (u > ld_.dir.first_u(b)) {
        const size_t tp = ld_.dir.time(u - 1);
        std::memcpy(out, saved + (tp * B + b) * saved_ld + saved_offset, H * sizeof(float));
      }
      // Rows before their first step are inactive: their previous state is never read.
    }
    *ld = H;
    return dst;
  }

  // The cell's backward at step u for rows [b0, b1), gradients dh/dc of those rows in, gate
  // gradients and the direct parts of dh_{t-1}/dc_{t-1} out.
  void CellStep(size_t u, size_t b0, size_t b1, const float* dh, const float* dc, float* dg_in, float* dg_rec,
                float* dh_prev, float* dc_prev, float* prev_h, float* prev_c) const {
    profile::PhaseScope timer(profile::Phase::kPointwise);
    const size_t t = ld_.dir.time(u), H = ld_.H, GH = ld_.GH, B = ld_.B;
    size_t h_prev_ld = H, c_prev_ld = H;
    const float* h_prev = prev_h == nullptr ? nullptr
                          : PreviousState(u, b0, b1, y_, ld_.width, ld_.d * H, rec_.has_h0 ? rec_.h0.get<float>() : nullptr,
                                          prev_h, &h_prev_ld);
    const float* c_prev = prev_c == nullptr ? nullptr
                          : PreviousState(u, b0, b1, cells_, H, 0, rec_.has_c0 ? rec_.c0.get<float>() : nullptr, prev_c,
                                          &c_prev_ld);
    const CellBackward step{b1 - b0, H,
                            gates_ ? gates_ + (t * B + b0) * GH : nullptr, GH,
                            hn_ ? hn_ + (t * B + b0) * H : nullptr,
                            y_ + (t * B + b0) * ld_.width + ld_.d * H, ld_.width,
                            h_prev, h_prev_ld,
                            cells_ ? cells_ + (t * B + b0) * H : nullptr,
                            c_prev, c_prev_ld, dh, dc, dg_in, dg_rec, dh_prev, dc_prev, ActiveRows(rec_, t, b0)};
    cell_backward(ks_, ld_.spec.cell, step);
  }

  // Adds the gate gradients of time steps [tlo, thi) (rows dg_in / dg_rec, (thi - tlo) * B of
  // them, in time order) to the weight gradients and the input gradient. `first` overwrites.
  void Flush(size_t tlo, size_t thi, const float* dg_in, const float* dg_rec, bool first) {
    const size_t H = ld_.H, GH = ld_.GH, B = ld_.B, in = ld_.in, T = ld_.T, rows = (thi - tlo) * B;
    const float* x = rec_.layer_input(ld_.l);
    std::optional<profile::PhaseScope> timer(std::in_place, profile::Phase::kWeightGrads);
    if (x != nullptr) {
      gemm(ks_, pool_, GH, in, rows, Transposed(dg_in, GH), Plain(x + tlo * B * in, in), g_.w_ih, in, !first);
    } else {
      ScatterTokenGrads(tlo, thi, dg_in, first);
    }
    AddColumnSumsParallel(pool_, dg_in, rows, GH, g_.bias_ih_sums);
    // dW_hh: each step's recurrent gate gradient times the state before it. Where that state is
    // an output of this direction it is a row of y; at a row's first step it is h0 (added once
    // at the end from first_dgates), and there the shifted y row is padding (0) or out of range.
    const size_t plo = ld_.dir.reverse ? tlo : std::max<size_t>(tlo, 1);
    const size_t phi = ld_.dir.reverse ? std::min(thi, T - 1) : thi;
    const size_t prev_rows = phi > plo ? (phi - plo) * B : 0;
    const size_t prev_step = prev_rows == 0 ? 0 : ld_.dir.reverse ? plo + 1 : plo - 1;
    const float* prev = y_ + prev_step * B * ld_.width + ld_.d * H;
    gemm(ks_, pool_, GH, H, prev_rows, Transposed(dg_rec + (plo - tlo) * B * GH, GH), Plain(prev, ld_.width), g_.w_hh,
         H, !first);
    if (info_.separate_recurrent) AddColumnSumsParallel(pool_, dg_rec, rows, GH, g_.bias_hh_sums);
    if (g_.first_dgates != nullptr) {
      for (size_t b = 0; b < B; ++b) {
        const size_t tf = ld_.dir.time(ld_.dir.first_u(b));
        if (tf >= tlo && tf < thi) std::memcpy(g_.first_dgates + b * GH, dg_rec + ((tf - tlo) * B + b) * GH, GH * sizeof(float));
      }
    }
    timer.reset();
    if (dx_ != nullptr) {
      profile::PhaseScope dx_timer(profile::Phase::kInputGrads);
      gemm(ks_, pool_, rows, in, GH, Plain(dg_in, GH), Plain(ld_.w_ih, in), dx_ + tlo * B * in, in, accumulate_dx_);
    }
  }

  // Token inputs: dW_ih[:, token] += the row's input gate gradient. With fewer rows than
  // vocabulary entries straight into W_ih's columns, else into rows of dW_ih^T (token_grads,
  // transposed once at the end).
  void ScatterTokenGrads(size_t tlo, size_t thi, const float* dg_in, bool first) {
    const size_t GH = ld_.GH, B = ld_.B, D = ld_.in, rows = (thi - tlo) * B;
    const int32_t* tokens = rec_.token_ids.data() + tlo * B;
    if (g_.token_grads == nullptr) {
      if (first) std::memset(g_.w_ih, 0, GH * D * sizeof(float));
      for (size_t r = 0; r < rows; ++r) {
        float* column = g_.w_ih + tokens[r];
        const float* src = dg_in + r * GH;
        for (size_t g = 0; g < GH; ++g) column[g * D] += src[g];
      }
      return;
    }
    ForColumns(pool_, rows, GH, [&](size_t c0, size_t c1) {
      if (first) {
        for (size_t v = 0; v < D; ++v) std::fill(g_.token_grads + v * GH + c0, g_.token_grads + v * GH + c1, 0.0f);
      }
      for (size_t r = 0; r < rows; ++r) {
        float* dst = g_.token_grads + static_cast<size_t>(tokens[r]) * GH;
        const float* src = dg_in + r * GH;
        for (size_t g = c0; g < c1; ++g) dst[g] += src[g];
      }
    });
  }

  // Full BPTT in chunks of steps, latest (in the recurrence's order) first: within a chunk every
  // thread carries dh (and dc) of its own batch rows back step by step; then the chunk's gate
  // gradients go to the weight and input gradients.
  void Full(float* dh0, float* dc0) {
    const size_t H = ld_.H, GH = ld_.GH, B = ld_.B, T = ld_.T, block = B * H;
    const size_t chunk = ChunkSteps(T, B, ws_.chunk_rows);
    const bool lstm = info_.has_cell_state, gru = info_.separate_recurrent;
    float* dg_in = ws_.dgates_in.floats(chunk * B * GH);
    float* dg_rec = gru ? ws_.dgates_rec.floats(chunk * B * GH) : dg_in;
    float* dh = ws_.dh.floats(block);
    float* dh_next = ws_.dh_next.floats(block);
    float* dc = lstm ? ws_.dc.floats(block) : nullptr;
    float* dc_next = lstm ? ws_.dc_next.floats(block) : nullptr;
    float* prev_h = gru ? ws_.prev_h.floats(block) : nullptr;
    float* prev_c = lstm ? ws_.prev_c.floats(block) : nullptr;
    std::fill(dh, dh + block, 0.0f);
    if (dc) std::fill(dc, dc + block, 0.0f);
    bool first = true;
    for (size_t u1 = T; u1 > 0;) {
      const size_t u0 = u1 > chunk ? u1 - chunk : 0;
      const size_t tlo = ld_.dir.reverse ? T - u1 : u0;
      const size_t thi = ld_.dir.reverse ? T - u0 : u1;
      ForBatchSlices(ks_, pool_, u1 - u0, B, GH * H, [&](ThreadPool* inner, size_t b0, size_t b1) {
        const size_t at = b0 * H;
        float* cur_h = dh;
        float* nxt_h = dh_next;
        float* cur_c = dc;
        float* nxt_c = dc_next;
        for (size_t u = u1; u-- > u0;) {
          const size_t t = ld_.dir.time(u);
          AddEntry(u, b0, b1, cur_h + at, cur_c ? cur_c + at : nullptr);
          float* g_in = dg_in + ((t - tlo) * B + b0) * GH;
          float* g_rec = dg_rec + ((t - tlo) * B + b0) * GH;
          CellStep(u, b0, b1, cur_h + at, cur_c ? cur_c + at : nullptr, g_in, g_rec, nxt_h + at,
                   nxt_c ? nxt_c + at : nullptr, prev_h ? prev_h + at : nullptr, prev_c ? prev_c + at : nullptr);
          profile::PhaseScope timer(profile::Phase::kRecurGemm);
          gemm_packed(ks_, inner, b1 - b0, Plain(g_rec, GH), ws_.backward_hh, nxt_h + at, H, true);
          std::swap(cur_h, nxt_h);
          std::swap(cur_c, nxt_c);
        }
      });
      // Every slice ran the same number of steps, so the carried gradients now sit where the
      // slices' last swap left them.
      if ((u1 - u0) % 2 == 1) {
        std::swap(dh, dh_next);
        std::swap(dc, dc_next);
      }
      Flush(tlo, thi, dg_in, dg_rec, first);
      first = false;
      u1 = u0;
    }
    std::memcpy(dh0, dh, block * sizeof(float));
    if (dc0 != nullptr) std::memcpy(dc0, dc, block * sizeof(float));
  }

  // Truncated BPTT: the gradient entering at step u travels back through steps u, u-1, ...,
  // u-k+1 only. Entry steps go in chunks; within a chunk their gradients travel back together
  // lag by lag (after m lags, entry e's rows hold the gradient reaching the state before step
  // u_e - m), so each lag is one product over the chunk's rows. Gate gradients of all steps are
  // summed over entries in a [T*B, G*H] buffer, then go to the weight and input gradients at once.
  void Truncated(size_t k, float* dh0, float* dc0) {
    const size_t H = ld_.H, GH = ld_.GH, B = ld_.B, T = ld_.T, block = B * H;
    const size_t chunk = ChunkSteps(T, B, ws_.chunk_rows);
    const bool lstm = info_.has_cell_state, gru = info_.separate_recurrent;
    float* all_in = ws_.dgates_in.floats(T * B * GH);
    float* all_rec = gru ? ws_.dgates_rec.floats(T * B * GH) : all_in;
    std::fill(all_in, all_in + T * B * GH, 0.0f);
    if (gru) std::fill(all_rec, all_rec + T * B * GH, 0.0f);
    float* lag_h = ws_.lag_h.floats(chunk * block);
    float* lag_h_next = ws_.lag_next.floats(chunk * block);
    float* lag_c = lstm ? ws_.lag_c.floats(2 * chunk * block) : nullptr;
    float* lag_c_next = lstm ? lag_c + chunk * block : nullptr;
    float* lag_in = ws_.lag_dgates_in.floats(chunk * B * GH);
    float* lag_rec = gru ? ws_.lag_dgates_rec.floats(chunk * B * GH) : lag_in;
    float* prev_h = gru ? ws_.prev_h.floats(chunk * block) : nullptr;
    float* prev_c = lstm ? ws_.prev_c.floats(chunk * block) : nullptr;
    std::fill(dh0, dh0 + block, 0.0f);
    if (dc0 != nullptr) std::fill(dc0, dc0 + block, 0.0f);
    for (size_t e0 = 0; e0 < T; e0 += chunk) {
      const size_t e1 = std::min(T, e0 + chunk);
      std::fill(lag_h, lag_h + (e1 - e0) * block, 0.0f);
      if (lstm) std::fill(lag_c, lag_c + (e1 - e0) * block, 0.0f);
      for (size_t u = e0; u < e1; ++u) {
        AddEntry(u, 0, B, lag_h + (u - e0) * block, lstm ? lag_c + (u - e0) * block : nullptr);
      }
      for (size_t m = 0; m < k; ++m) {
        const size_t ua = std::max(e0, m);  // entries whose step u - m exists
        if (ua >= e1) break;
        ForRows(pool_, e1 - ua, 1, [&](size_t begin, size_t end) {
          for (size_t u = ua + begin; u < ua + end; ++u) {
            const size_t e = u - e0;
            CellStep(u - m, 0, B, lag_h + e * block, lstm ? lag_c + e * block : nullptr, lag_in + e * B * GH,
                     lag_rec + e * B * GH, lag_h_next + e * block, lstm ? lag_c_next + e * block : nullptr,
                     prev_h ? prev_h + e * block : nullptr, prev_c ? prev_c + e * block : nullptr);
            // Entries reach distinct steps at one lag, so these sums never collide.
            const size_t t = ld_.dir.time(u - m);
            AddRows(all_in + t * B * GH, lag_in + e * B * GH, B * GH);
            if (gru) AddRows(all_rec + t * B * GH, lag_rec + e * B * GH, B * GH);
          }
        });
        const size_t ea = ua - e0;
        std::optional<profile::PhaseScope> timer(std::in_place, profile::Phase::kRecurGemm);
        gemm_packed(ks_, pool_, (e1 - ua) * B, Plain(lag_rec + ea * B * GH, GH), ws_.backward_hh,
                    lag_h_next + ea * block, H, true);
        timer.reset();
        // A gradient that reached a row's first step is the initial state's; it travels no
        // further.
        for (size_t u = ua; u < e1; ++u) {
          const size_t e = u - e0, s = u - m;
          for (size_t b = 0; b < B; ++b) {
            if (s != ld_.dir.first_u(b)) continue;
            MoveRow(lag_h_next + e * block + b * H, dh0 + b * H, H);
            if (lstm && dc0 != nullptr) MoveRow(lag_c_next + e * block + b * H, dc0 + b * H, H);
          }
        }
        std::swap(lag_h, lag_h_next);
        std::swap(lag_c, lag_c_next);
      }
    }
    Flush(0, T, all_in, all_rec, true);
  }

 public:
  // Where the sources' gradients enter this layer-direction (see layer_source_norms): rows of
  // `width` floats from column `offset`. Diagonal: source t enters at step t only, rows
  // data[t * B + b]. Otherwise at every step, rows data[(s * S + (t - g0)) * B + b] for the
  // sources [g0, g0 + S) of the group.
  struct SourceEntries {
    const float* data;
    size_t width, offset;
    bool diagonal;
  };

  // Every source of [g0, g1) back through the whole recurrence at once, step by step in the
  // recurrence's reverse order: at each step the gradients of the sources it reaches are one
  // product over all their rows. `causal`: source t reaches only the steps at or before t in the
  // recurrence's order (diagonal entries, and the layers of unidirectional stacks), so those
  // rounds skip the rest. Adds Σ_b ‖dL_t/dh_s‖² to norms[t * T + s]; `below` (or null) receives
  // each source's gradient of the layer's input, [T, S, B, in] with S = g1 - g0.
  void Sources(const SourceEntries& entries, bool causal, size_t g0, size_t g1, double* norms, float* below) {
    const size_t H = ld_.H, GH = ld_.GH, B = ld_.B, T = ld_.T, in = ld_.in, block = B * H, S = g1 - g0;
    const bool lstm = info_.has_cell_state, gru = info_.separate_recurrent;
    ws_.backward_hh.pack(ks_, GH, H, Plain(ld_.w_hh, H));
    float* dh = ws_.lag_h.floats(S * block);
    float* dh_next = ws_.lag_next.floats(S * block);
    float* dc = lstm ? ws_.lag_c.floats(2 * S * block) : nullptr;
    float* dc_next = lstm ? dc + S * block : nullptr;
    float* g_in = ws_.lag_dgates_in.floats(S * B * GH);
    float* g_rec = gru ? ws_.lag_dgates_rec.floats(S * B * GH) : g_in;
    float* prev_h = gru ? ws_.prev_h.floats(S * block) : nullptr;
    float* prev_c = lstm ? ws_.prev_c.floats(S * block) : nullptr;
    // Sources join as the rounds reach them, into rows that must hold zeros in both buffers.
    std::fill(dh, dh + S * block, 0.0f);
    std::fill(dh_next, dh_next + S * block, 0.0f);
    if (lstm) std::fill(dc, dc + 2 * S * block, 0.0f);
    for (size_t u = T; u-- > 0;) {
      const size_t s = ld_.dir.time(u);
      size_t lo = g0, hi = g1;
      if (causal) {
        if (ld_.dir.reverse) hi = std::min(g1, s + 1);
        else lo = std::max(g0, s);
      }
      if (lo >= hi) continue;
      ForRows(pool_, hi - lo, 1, [&](size_t begin, size_t end) {
        for (size_t t = lo + begin; t < lo + end; ++t) {
          const size_t e = t - g0;
          float* h = dh + e * block;
          const float* src = entries.diagonal ? (t == s ? entries.data + t * B * entries.width : nullptr)
                                              : entries.data + (s * S + e) * B * entries.width;
          double sum = 0;
          for (size_t b = 0; b < B; ++b) {
            if (!rec_.lengths.empty() && !rec_.active[s * B + b]) continue;
            float* row = h + b * H;
            if (src != nullptr) {
              const float* x = src + b * entries.width + entries.offset;
              for (size_t j = 0; j < H; ++j) row[j] += x[j];
            }
            for (size_t j = 0; j < H; ++j) sum += static_cast<double>(row[j]) * row[j];
          }
          norms[t * T + s] += sum;
          CellStep(u, 0, B, h, lstm ? dc + e * block : nullptr, g_in + e * B * GH, g_rec + e * B * GH,
                   dh_next + e * block, lstm ? dc_next + e * block : nullptr, prev_h ? prev_h + e * block : nullptr,
                   prev_c ? prev_c + e * block : nullptr);
        }
      });
      const size_t first = lo - g0;
      std::optional<profile::PhaseScope> timer(std::in_place, profile::Phase::kRecurGemm);
      gemm_packed(ks_, pool_, (hi - lo) * B, Plain(g_rec + first * B * GH, GH), ws_.backward_hh,
                  dh_next + first * block, H, true);
      timer.reset();
      if (below != nullptr) {
        profile::PhaseScope dx_timer(profile::Phase::kInputGrads);
        gemm(ks_, pool_, (hi - lo) * B, in, GH, Plain(g_in + first * B * GH, GH), Plain(ld_.w_ih, in),
             below + (s * S + first) * B * in, in, true);
      }
      std::swap(dh, dh_next);
      std::swap(dc, dc_next);
    }
  }

 private:
  static void AddRows(float* dst, const float* src, size_t n) {
    for (size_t i = 0; i < n; ++i) dst[i] += src[i];
  }

  // dst += src; src = 0.
  static void MoveRow(float* src, float* dst, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      dst[i] += src[i];
      src[i] = 0.0f;
    }
  }

  const kernels::KernelSet& ks_;
  ThreadPool* pool_;
  const LayerDir& ld_;
  const ForwardRecord& rec_;
  const LayerUpstream& up_;
  const float* entry_;
  LayerWorkspace& ws_;
  DirGrads& g_;
  float* dx_;
  bool accumulate_dx_;
  const CellInfo& info_;
  const float* y_;
  const float* gates_;
  const float* cells_;
  const float* hn_;
};

}  // namespace

void layer_backward(const kernels::KernelSet& ks, ThreadPool* pool, const LayerWeights& weights,
                    const ForwardRecord& rec, const LayerUpstream& up, LayerWorkspace& ws,
                    const LayerInputGrads& input_grads, const LayerGrads& grads) {
  profile::CallScope timer("backward");
  const LayerSpec& spec = rec.spec;
  const size_t T = rec.steps, B = rec.batch, H = spec.hidden, GH = spec.gates() * H, dirs = spec.directions();
  const size_t rows = T * B, width = spec.output_width(), block = B * H;
  const CellInfo& info = cell_info(spec.cell);
  const float* entry = up.dy;
  const size_t states = spec.layers * dirs * block;
  float* dh0 = input_grads.dh0;
  float* dc0 = input_grads.dc0;
  if (dh0 == nullptr || (info.has_cell_state && dc0 == nullptr)) {
    float* sink = ws.initial_grads.floats(2 * states);
    if (dh0 == nullptr) dh0 = sink;
    if (info.has_cell_state && dc0 == nullptr) dc0 = sink + states;
  }
  for (size_t l = spec.layers; l-- > 0;) {
    const size_t in = spec.layer_input(l);
    // The input gradient of layer l is the upstream gradient of layer l - 1's output.
    float* dx = l == 0 ? input_grads.dx : ws.entry[l % 2].floats(rows * width);
    const bool tokens = l == 0 && rec.tokens;
    for (size_t d = 0; d < dirs; ++d) {
      const LayerDir ld(spec, weights, l, d, T, B, rec.lengths.empty() ? nullptr : rec.lengths.data());
      float* const* p = grads.arrays.data() + ld.index * 4;
      DirGrads g{p[0], p[1], p[2], p[3], ws.bias_ih_sums.doubles(GH), ws.bias_hh_sums.doubles(GH),
                 rec.has_h0 ? ws.first_dgates.floats(B * GH) : nullptr,
                 tokens && rows >= in ? ws.token_grads.floats(in * GH) : nullptr};
      std::fill(g.bias_ih_sums, g.bias_ih_sums + GH, 0.0);
      std::fill(g.bias_hh_sums, g.bias_hh_sums + GH, 0.0);
      if (g.first_dgates != nullptr) std::fill(g.first_dgates, g.first_dgates + B * GH, 0.0f);
      DirectionBackward run(ks, pool, ld, rec, up, entry, ws, g, dx, d > 0);
      run.Run(dh0 + ld.index * block, dc0 ? dc0 + ld.index * block : nullptr);
      profile::PhaseScope weight_timer(profile::Phase::kWeightGrads);
      if (g.first_dgates != nullptr) {
        gemm(ks, pool, GH, H, B, Transposed(g.first_dgates, GH), Plain(rec.h0.get<float>() + ld.index * block, H), g.w_hh,
             H, true);
      }
      const double* hh_sums = info.separate_recurrent ? g.bias_hh_sums : g.bias_ih_sums;
      for (size_t j = 0; j < GH; ++j) {
        g.b_ih[j] = static_cast<float>(g.bias_ih_sums[j]);
        g.b_hh[j] = static_cast<float>(hh_sums[j]);
      }
      if (g.token_grads != nullptr) Transpose(g.token_grads, in, GH, g.w_ih);
    }
    if (l > 0) {
      if (rec.dropout_on) ApplyDropout(pool, rec, dx, dx, width, spec.dropout, l - 1);
      entry = dx;
    }
  }
}


void layer_source_norms(const kernels::KernelSet& ks, ThreadPool* pool, const LayerWeights& weights,
                        const ForwardRecord& rec, const float* dy, const float* probes, LayerWorkspace& ws,
                        double* norms) {
  profile::CallScope timer("source norms");
  const LayerSpec& spec = rec.spec;
  const size_t T = rec.steps, B = rec.batch, H = spec.hidden, dirs = spec.directions(), L = spec.layers;
  const size_t width = spec.output_width();
  const int32_t* lengths = rec.lengths.empty() ? nullptr : rec.lengths.data();
  std::fill(norms, norms + L * dirs * T * T, 0.0);
  const LayerUpstream unused_up;
  DirGrads unused_grads{};
  if (probes != nullptr) {
    for (size_t index = 0; index < L * dirs; ++index) {
      const LayerDir ld(spec, weights, index / dirs, index % dirs, T, B, lengths);
      DirectionBackward run(ks, pool, ld, rec, unused_up, nullptr, ws, unused_grads, nullptr, false);
      run.Sources({probes + index * T * B * H, H, 0, true}, true, 0, T, norms + index * T * T, nullptr);
    }
    return;
  }
  // Below the top layer a source's gradient covers every step: [T, S, B, width] per group of S
  // sources, so groups are sized to keep that under a fixed budget.
  constexpr size_t kEntryBudgetBytes = size_t{64} << 20;
  const size_t per_source = T * B * width * sizeof(float);
  const size_t group = L == 1 ? T : std::max<size_t>(1, std::min(T, kEntryBudgetBytes / per_source));
  std::vector<float> keep;  // dropout factors of a layer's output, [T, B, width]
  for (size_t g0 = 0; g0 < T; g0 += group) {
    const size_t g1 = std::min(T, g0 + group), S = g1 - g0;
    const float* entry = dy;
    bool diagonal = true;
    for (size_t l = L; l-- > 0;) {
      float* below = nullptr;
      if (l > 0) {
        below = ws.entry[l % 2].floats(T * S * B * width);
        std::fill(below, below + T * S * B * width, 0.0f);
      }
      for (size_t d = 0; d < dirs; ++d) {
        const LayerDir ld(spec, weights, l, d, T, B, lengths);
        DirectionBackward run(ks, pool, ld, rec, unused_up, nullptr, ws, unused_grads, nullptr, false);
        run.Sources({entry, width, d * H, diagonal}, diagonal || dirs == 1, g0, g1, norms + ld.index * T * T, below);
      }
      if (l == 0) break;
      if (rec.dropout_on) {
        keep.assign(T * B * width, 1.0f);
        ApplyDropout(pool, rec, keep.data(), keep.data(), width, spec.dropout, l - 1);
        for (size_t s = 0; s < T; ++s)
          for (size_t e = 0; e < S; ++e) {
            float* rows = below + (s * S + e) * B * width;
            const float* k = keep.data() + s * B * width;
            for (size_t i = 0; i < B * width; ++i) rows[i] *= k[i];
          }
      }
      entry = below;
      diagonal = false;
    }
  }
}

}  // namespace engine
}  // namespace bptt
