// The recurrent cells as a small table: how many gate blocks a cell has, what it keeps per step
// for backward, and its pointwise forward and backward over a block of batch rows. The layer
// driver (layer.cc) owns every product; a cell only sees its gates. A new cell is one entry here,
// its two row functions in cell_rows.inl (and in its tables there), and its oracle in lib/engine.
//
// Math (PyTorch's, gate blocks in PyTorch's row order of weight_ih / weight_hh):
//   tanh, relu  h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)
//   lstm        [i f g o] = x W_ih^T + b_ih + h W_hh^T + b_hh;  i, f, o sigmoid, g tanh
//               c' = f c + i g;  h' = o tanh(c')
//   gru         [r z] = sigmoid(x W_i^T + b_i + h W_h^T + b_h);
//               n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn));  h' = (1 - z) n + z h
#pragma once

#include <cstddef>
#include <cstdint>

#include "../kernels/kernels.h"

namespace bptt {
namespace engine {

enum class CellKind : int { kTanh = 0, kRelu = 1, kLstm = 2, kGru = 3 };

struct CellInfo {
  const char* name;
  int gates;                // G: gate blocks of H rows in weight_ih / weight_hh
  bool has_cell_state;      // LSTM's c
  bool saves_gates;         // keeps its activated gates [rows, G*H] for backward
  bool separate_recurrent;  // GRU: h W_hh^T + b_hh stays apart from the input projection
};

const CellInfo& cell_info(CellKind kind);

// Parses "tanh", "relu", "lstm", "gru"; false for anything else.
bool parse_cell(const char* name, CellKind* out);

// Rows not active at a step (padding: the step is past the row's length) keep their state and
// output 0; their backward passes the state gradient through unchanged and produces no gate
// gradient. `active` null means every row is active.
//
// The pointwise functions are compiled per ISA (cell_kernels.h); each reads and writes every
// array of a row once, in one pass over its hidden units.

// One time step forward, for `rows` batch rows. Row r of a matrix argument starts at
// base + r * ld.
//
// The pre-activations are assembled here, so no pass over the products adds biases or copies:
//   one gate group (tanh, relu, lstm): gates[r] + bias (+ table row tokens[r])
//   gru: input part  (table ? table row tokens[r] : gates[r]) + bias,
//        recurrent part  recurrent[r] + bias_hh
struct CellForward {
  size_t rows, hidden;
  float* gates;            // in: the products (input projection unless table, plus h W_hh^T unless
  size_t gates_ld;         //     separate_recurrent); out: the activated gates when saves_gates
  const float* bias;       // [G*H] b_ih + b_hh, or b_ih when separate_recurrent
  const float* table;      // token inputs: row v ([G*H]) is token v's input projection; or null
  const int32_t* tokens;   // with table: the rows' token ids
  const float* recurrent;  // GRU: h W_hh^T, ld gates_ld
  const float* bias_hh;    // GRU: b_hh
  float* saved_hn;         // GRU: keeps h W_hn^T + b_hn ([rows, H], ld hidden)
  float* h;                // running state [rows, H] (ld hidden): h_{t-1} in, h_t out
  float* c;                // LSTM running cell state, like h
  float* saved_c;          // LSTM: c_t for backward ([rows, H], ld hidden); may alias nothing else
  float* y;                // the step's output rows (0 for inactive rows)
  size_t y_ld;
  const uint8_t* active;
};

// One time step backward. dh / dc hold the whole gradient reaching h_t / c_t.
struct CellBackward {
  size_t rows, hidden;
  const float* gates;     // saved activations (saves_gates), ld gates_ld
  size_t gates_ld;
  const float* saved_hn;  // GRU, ld hidden
  const float* h;         // tanh / relu: h_t (ld h_ld)
  size_t h_ld;
  const float* h_prev;    // GRU: h_{t-1} (ld h_prev_ld)
  size_t h_prev_ld;
  const float* c;         // LSTM: c_t (ld hidden)
  const float* c_prev;    // LSTM: c_{t-1} (ld c_prev_ld)
  size_t c_prev_ld;
  const float* dh;        // ld hidden
  const float* dc;        // LSTM, ld hidden
  float* dgates_in;       // out: d(pre-activation) for W_ih, b_ih and dx (ld gates_ld)
  float* dgates_rec;      // out: d(recurrent pre-activation) for W_hh, b_hh, dh_{t-1}; the same
                          //      array as dgates_in except for GRU (its n block is r times it)
  float* dh_prev;         // out: the part of dh_{t-1} not through W_hh (GRU z dh; inactive: dh)
  float* dc_prev;         // out: LSTM dc_{t-1} (inactive: dc)
  const uint8_t* active;
};

void cell_forward(const kernels::KernelSet& ks, CellKind kind, const CellForward& step);
void cell_backward(const kernels::KernelSet& ks, CellKind kind, const CellBackward& step);

}  // namespace engine
}  // namespace bptt
