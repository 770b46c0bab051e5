// The recurrent layer engine: a stack of layers of one cell kind, uni- or bidirectional, over
// batches of variable-length sequences; forward saves what backward needs (the cuDNN/oneDNN
// contract), backward takes the upstream gradients of the outputs and final states and returns
// the gradients of the inputs, initial states and weights, with optional truncation.
//
// Formulation (oneDNN's): per layer and direction the inputs are projected onto every gate (one
// product over all T*B rows for small batches; for larger ones step by step, by the thread that
// owns the rows, just before the recurrent product; token inputs select rows of W_ih^T), the
// B x H by H x G*H recurrent product steps through time, each step followed by the cell's
// pointwise function (which adds the biases) on the rows a thread owns. Backward goes through
// time in chunks: gate gradients of a chunk, then the weight gradients and the input gradient of
// the chunk as all-rows products, so no T*B*G*H gradient buffer is held for full BPTT.
//
// Layout: row-major, time-major. Dense input [T, B, D] or token ids [T, B]; the output of layer l
// [T, B, dirs*H] (direction d in columns [d*H, (d+1)*H)); states [L*dirs, B, H], index l*dirs + d.
// Weights per (layer, direction) in PyTorch's order: weight_ih [G*H, in_l], weight_hh [G*H, H],
// bias_ih [G*H], bias_hh [G*H]; in_0 = D, in_l = dirs*H.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../aligned_buffer.h"
#include "../gemm.h"
#include "../kernels/kernels.h"
#include "cell.h"

namespace bptt {

class ThreadPool;

namespace engine {

// Rows of gate gradients per chunk of BPTT: enough for efficient products, few enough that the
// chunk buffers stay a small fraction of what the forward pass saved.
constexpr size_t kBackwardChunkRows = 1024;

struct LayerSpec {
  CellKind cell = CellKind::kTanh;
  size_t input = 0;   // D
  size_t hidden = 0;  // H
  size_t layers = 1;  // L
  bool bidirectional = false;
  double dropout = 0;  // between layers, in training only

  size_t directions() const { return bidirectional ? 2 : 1; }
  size_t gates() const { return static_cast<size_t>(cell_info(cell).gates); }
  size_t layer_input(size_t l) const { return l == 0 ? input : directions() * hidden; }
  size_t output_width() const { return directions() * hidden; }
  size_t parameter_count() const { return layers * directions() * 4; }
  // Elements of parameter p (order: per layer, per direction: w_ih, w_hh, b_ih, b_hh).
  size_t parameter_size(size_t p) const;
  // PyTorch's name of parameter p: weight_ih_l0, ..., bias_hh_l1_reverse.
  std::string parameter_name(size_t p) const;
  bool operator==(const LayerSpec& o) const;
};

// Dropout keep mask, the same function the TS oracle uses: element i of the output of layer l
// (feeding layer l + 1) is kept iff DropoutHash(seed, l, i) >= threshold, threshold =
// floor(p * 2^32); kept values are scaled by 1 / (1 - p).
uint32_t DropoutHash(uint32_t seed, uint32_t layer, uint32_t index);

struct LayerWeights {
  // [parameter_count()], in parameter order.
  std::vector<const float*> arrays;
  const float* w_ih(const LayerSpec& s, size_t l, size_t d) const { return arrays[(l * s.directions() + d) * 4]; }
  const float* w_hh(const LayerSpec& s, size_t l, size_t d) const { return arrays[(l * s.directions() + d) * 4 + 1]; }
  const float* b_ih(const LayerSpec& s, size_t l, size_t d) const { return arrays[(l * s.directions() + d) * 4 + 2]; }
  const float* b_hh(const LayerSpec& s, size_t l, size_t d) const { return arrays[(l * s.directions() + d) * 4 + 3]; }
};

struct LayerGrads {
  std::vector<float*> arrays;  // like LayerWeights
};

// One forward call's inputs. Exactly one of tokens / dense. lengths, h0, c0 may be null.
struct LayerInput {
  size_t steps = 0;  // T
  size_t batch = 0;  // B
  const int32_t* tokens = nullptr;
  const float* dense = nullptr;
  const int32_t* lengths = nullptr;  // [B], each in [1, T]
  const float* h0 = nullptr;         // [L*dirs, B, H]
  const float* c0 = nullptr;         // LSTM
  bool training = false;             // dropout on
  uint32_t dropout_seed = 0;
  // The rows are rows [dropout_first_row, + batch) of a batch of dropout_batch rows (0: this
  // call's own) whose element places the dropout masks hash: a shard draws its rows' masks of
  // the whole batch.
  size_t dropout_first_row = 0, dropout_batch = 0;
  // Rows per step in tokens / dense: a shard of a larger batch reads its rows of the whole
  // batch's arrays with it (tokens and dense then point at its first row). 0: batch.
  size_t input_batch_stride = 0;
  // Outputs only (predict): nothing is kept for backward, neither gates nor cell states nor a
  // copy of the dense input, and the record cannot be differentiated.
  bool inference = false;
};

// The large arrays of forward records that are gone, for the next records prepared with the
// same workspace: the layer API makes a record per forward pass, and fresh memory costs a page
// fault and zeroing per page (L2: 85 MB a pass, 20-70 ms of kernel time on one thread). Shared
// by a workspace and the records it prepared, so it lives until the last of them goes. It keeps
// at most as many bytes as the largest record prepared with it held; thread-safe (records go on
// the JS thread, forward passes may run on a worker).
class RecordArrayPool {
 public:
  // Makes `buffer` hold at least `bytes`: as it is when it does, else with the smallest pooled
  // array that does (its own memory is freed), else as it is (it then allocates on use).
  void Fit(AlignedBuffer& buffer, size_t bytes);
  // Takes the buffer's memory, leaving it empty; the oldest arrays go when over the limit.
  void Keep(AlignedBuffer& buffer);
  // A record prepared with the pool holds `bytes` in its arrays.
  void NoteRecord(size_t bytes);

 private:
  std::mutex mutex_;
  std::vector<AlignedBuffer> arrays_;  // oldest first
  size_t held_ = 0, limit_ = 0;
};

// Everything backward needs from a forward pass, in memory of its own (copies of the inputs
// too: the caller may change its arrays between the two calls).
class ForwardRecord {
 public:
  ForwardRecord() = default;
  ForwardRecord(ForwardRecord&&) = default;
  ForwardRecord& operator=(ForwardRecord&&) = default;
  ~ForwardRecord();  // its large arrays go to array_pool (none without one: a moved-from record)
  LayerSpec spec;
  size_t steps = 0, batch = 0;
  bool tokens = false;
  bool has_h0 = false, has_c0 = false;
  bool dropout_on = false;
  uint32_t dropout_seed = 0;
  size_t dropout_first_row = 0, dropout_batch = 0;  // as LayerInput's, dropout_batch resolved
  std::vector<int32_t> token_ids;  // [T, B]
  std::vector<int32_t> lengths;    // [B], empty when every sequence has T steps
  std::vector<uint8_t> active;     // [T, B]: step t of row b is inside its sequence
  AlignedBuffer dense;             // [T, B, D]
  AlignedBuffer h0, c0;            // [L*dirs, B, H]
  std::vector<AlignedBuffer> outputs;       // per layer: [T, B, dirs*H]
  std::vector<AlignedBuffer> dropped;       // per layer l >= 1 with dropout: its masked input
  std::vector<AlignedBuffer> gates;         // per layer*dirs: activated gates [T, B, G*H]
  std::vector<AlignedBuffer> cells;         // per layer*dirs, LSTM: c_t [T, B, H]
  std::vector<AlignedBuffer> recurrent_n;   // per layer*dirs, GRU: h W_hn^T + b_hn [T, B, H]
  bool valid = false;                       // a forward pass for backward completed into it
  bool inference = false;                   // the last pass kept outputs only (LayerInput::inference)
  const float* input_in_place = nullptr;    // during an inference pass: the caller's dense input
  std::shared_ptr<RecordArrayPool> array_pool;  // of the workspace that last prepared it

  // Input of layer l as the forward pass saw it (dense or the previous output, masked).
  const float* layer_input(size_t l) const;
  size_t bytes() const;
};

// Scratch kept between calls so steady-state training allocates nothing. One call at a time.
struct LayerWorkspace {
  AlignedBuffer pre;            // input projections of a layer-direction where no record keeps
                                // them: [T*B, G*H] when projected at once, else one step's [B, G*H]
  AlignedBuffer step_cells, step_hn;  // inference: one step's c_t (LSTM), h W_hn^T + b_hn (GRU)
  AlignedBuffer state_h, state_c, recurrent, token_table;
  AlignedBuffer bias;           // b_ih + b_hh of a layer-direction, for the cells
  AlignedBuffer entry[2];       // upstream gradient of a layer's output [T*B, dirs*H]
  AlignedBuffer dgates_in, dgates_rec, dh, dh_next, dc, dc_next, prev_h, prev_c, first_dgates;
  AlignedBuffer lag_h, lag_c, lag_dgates_in, lag_dgates_rec, lag_next;
  AlignedBuffer bias_ih_sums, bias_hh_sums, token_grads;
  AlignedBuffer initial_grads;  // dh0 / dc0 when the caller does not want them
  // Rows of gate gradients backward holds per chunk of full BPTT; 0: kBackwardChunkRows. Batch
  // shards share one budget.
  size_t chunk_rows = 0;
  PackedB forward_ih;   // W_ih^T (dense inputs)
  PackedB forward_hh;   // W_hh^T
  PackedB backward_hh;  // W_hh
  std::shared_ptr<RecordArrayPool> record_arrays = std::make_shared<RecordArrayPool>();
};

struct LayerOutputs {
  float* y = nullptr;   // [T, B, dirs*H], or null (the record holds it)
  float* hT = nullptr;  // [L*dirs, B, H]
  float* cT = nullptr;  // LSTM
};

// Runs the stack forward into `record` (which it sizes) and copies the outputs out.
void layer_forward(const kernels::KernelSet& ks, ThreadPool* pool, const LayerSpec& spec,
                   const LayerWeights& weights, const LayerInput& input, LayerWorkspace& ws,
                   ForwardRecord& record, const LayerOutputs& out);

struct LayerUpstream {
  const float* dy = nullptr;   // [T, B, dirs*H]
  const float* dhT = nullptr;  // [L*dirs, B, H] or null
  const float* dcT = nullptr;  // LSTM, or null
  size_t truncate = 0;         // 0: full BPTT
};

struct LayerInputGrads {
  float* dx = nullptr;   // [T, B, D] (dense input), or null
  float* dh0 = nullptr;  // [L*dirs, B, H], or null
  float* dc0 = nullptr;  // LSTM, or null
};

// Overwrites dx, dh0, dc0 and every weight gradient.
void layer_backward(const kernels::KernelSet& ks, ThreadPool* pool, const LayerWeights& weights,
                    const ForwardRecord& record, const LayerUpstream& up, LayerWorkspace& ws,
                    const LayerInputGrads& input_grads, const LayerGrads& grads);

// Gradient diagnostics: each step t of an upstream gradient is a separate source L_t, and
// for every layer-direction, source t and step s the squared norm of dL_t/dh_s (summed over the
// batch rows active at s) goes to norms[(index * T + t) * T + s] (index = l * dirs + d; 0 where
// nothing reaches). All sources travel back together, one step per round with one product
// over the rows of every source the step reaches (the forward record's steps are shared), not
// one backward pass per source.
//   dy != null: dy [T, B, dirs*H] is the gradient of the top layer's output; source t's part is
//     its step t, and it travels through every layer below as backward does.
//   probes != null: probes [L*dirs, T, B, H]; probe t of a layer-direction enters its state h_t
//     and goes through that layer-direction's own recurrence only (u^T dh_t/dh_s: Jacobian
//     products).
// Exactly one of dy / probes. Padding steps are no source and pass nothing on; the gradient that
// reaches a row's first step is the initial state's and goes no further.
void layer_source_norms(const kernels::KernelSet& ks, ThreadPool* pool, const LayerWeights& weights,
                        const ForwardRecord& record, const float* dy, const float* probes, LayerWorkspace& ws,
                        double* norms);

}  // namespace engine
}  // namespace bptt
