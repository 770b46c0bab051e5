// Pointwise forward and backward of each cell, one batch row at a time (the transcendental
// functions go through the active ISA's vector tanh; sigmoid(x) = (1 + tanh(x / 2)) / 2).
#include <cstring>

#include "cell.h"

namespace bptt {
namespace engine {
namespace {

// x = sigmoid(x), through the ISA's tanh: accurate to a few float ulps of 1 (absolute), which is
// what a gate that multiplies values of order 1 needs.
void SigmoidInplace(const kernels::KernelSet& ks, float* x, size_t n) {
  for (size_t j = 0; j < n; ++j) x[j] *= 0.5f;
  ks.tanh_inplace(x, n);
  for (size_t j = 0; j < n; ++j) x[j] = 0.5f * x[j] + 0.5f;
}

bool Active(const uint8_t* active, size_t r) { return active == nullptr || active[r] != 0; }

// Inactive (padding) rows: output 0, state unchanged; backward passes the state gradient on.
void ZeroRow(float* y, size_t n) { std::memset(y, 0, n * sizeof(float)); }

void ForwardElman(const kernels::KernelSet& ks, const CellForward& s, bool relu) {
  const size_t H = s.hidden;
  for (size_t r = 0; r < s.rows; ++r) {
    float* y = s.y + r * s.y_ld;
    if (!Active(s.active, r)) {
      ZeroRow(y, H);
      continue;
    }
    float* pre = s.gates + r * s.gates_ld;
    if (relu) {
      for (size_t j = 0; j < H; ++j) pre[j] = pre[j] > 0.0f ? pre[j] : 0.0f;
    } else {
      ks.tanh_inplace(pre, H);
    }
    std::memcpy(s.h + r * H, pre, H * sizeof(float));
    std::memcpy(y, pre, H * sizeof(float));
  }
}

void BackwardElman(const CellBackward& s, bool relu) {
  const size_t H = s.hidden;
  for (size_t r = 0; r < s.rows; ++r) {
    const float* dh = s.dh + r * H;
    float* dg = s.dgates_in + r * s.gates_ld;
    float* dh_prev = s.dh_prev + r * H;
    if (!Active(s.active, r)) {
      ZeroRow(dg, H);
      std::memcpy(dh_prev, dh, H * sizeof(float));
      continue;
    }
    const float* h = s.h + r * s.h_ld;
    if (relu) {
      for (size_t j = 0; j < H; ++j) dg[j] = h[j] > 0.0f ? dh[j] : 0.0f;
    } else {
      for (size_t j = 0; j < H; ++j) dg[j] = dh[j] * (1.0f - h[j] * h[j]);
    }
    ZeroRow(dh_prev, H);
  }
}

void ForwardLstm(const kernels::KernelSet& ks, const CellForward& s) {
  const size_t H = s.hidden;
  for (size_t r = 0; r < s.rows; ++r) {
    float* y = s.y + r * s.y_ld;
    float* c = s.c + r * H;
    float* saved_c = s.saved_c + r * H;
    if (!Active(s.active, r)) {
      ZeroRow(y, H);
      std::memcpy(saved_c, c, H * sizeof(float));
      continue;
    }
    float* i = s.gates + r * s.gates_ld;
    float* f = i + H;
    float* g = f + H;
    float* o = g + H;
    SigmoidInplace(ks, i, 2 * H);  // i and f are adjacent
    ks.tanh_inplace(g, H);
    SigmoidInplace(ks, o, H);
    float* tanh_c = s.scratch;
    for (size_t j = 0; j < H; ++j) {
      const float cn = f[j] * c[j] + i[j] * g[j];
      c[j] = cn;
      saved_c[j] = cn;
      tanh_c[j] = cn;
    }
    ks.tanh_inplace(tanh_c, H);
    float* h = s.h + r * H;
    for (size_t j = 0; j < H; ++j) {
      h[j] = o[j] * tanh_c[j];
      y[j] = h[j];
    }
  }
}

void BackwardLstm(const kernels::KernelSet& ks, const CellBackward& s) {
  const size_t H = s.hidden;
  for (size_t r = 0; r < s.rows; ++r) {
    const float* dh = s.dh + r * H;
    const float* dc = s.dc + r * H;
    float* dg = s.dgates_in + r * s.gates_ld;
    float* dh_prev = s.dh_prev + r * H;
    float* dc_prev = s.dc_prev + r * H;
    if (!Active(s.active, r)) {
      ZeroRow(dg, 4 * H);
      std::memcpy(dh_prev, dh, H * sizeof(float));
      std::memcpy(dc_prev, dc, H * sizeof(float));
      continue;
    }
    const float* i = s.gates + r * s.gates_ld;
    const float* f = i + H;
    const float* g = f + H;
    const float* o = g + H;
    const float* c = s.c + r * H;
    const float* c_prev = s.c_prev + r * H;
    float* tanh_c = s.scratch;
    std::memcpy(tanh_c, c, H * sizeof(float));
    ks.tanh_inplace(tanh_c, H);
    float* di = dg;
    float* df = di + H;
    float* dgg = df + H;
    float* d_o = dgg + H;
    for (size_t j = 0; j < H; ++j) {
      const float tc = tanh_c[j];
      const float dct = dc[j] + dh[j] * o[j] * (1.0f - tc * tc);
      d_o[j] = dh[j] * tc * o[j] * (1.0f - o[j]);
      di[j] = dct * g[j] * i[j] * (1.0f - i[j]);
      df[j] = dct * c_prev[j] * f[j] * (1.0f - f[j]);
      dgg[j] = dct * i[j] * (1.0f - g[j] * g[j]);
      dc_prev[j] = dct * f[j];
    }
    ZeroRow(dh_prev, H);
  }
}

void ForwardGru(const kernels::KernelSet& ks, const CellForward& s) {
  const size_t H = s.hidden;
  for (size_t r = 0; r < s.rows; ++r) {
    float* y = s.y + r * s.y_ld;
    if (!Active(s.active, r)) {
      ZeroRow(y, H);
      continue;
    }
    float* rz = s.gates + r * s.gates_ld;  // r then z, then n
    float* n = rz + 2 * H;
    const float* rec = s.recurrent + r * s.gates_ld;
    for (size_t j = 0; j < 2 * H; ++j) rz[j] += rec[j];
    SigmoidInplace(ks, rz, 2 * H);
    const float* rec_n = rec + 2 * H;
    for (size_t j = 0; j < H; ++j) n[j] += rz[j] * rec_n[j];
    ks.tanh_inplace(n, H);
    std::memcpy(s.saved_hn + r * H, rec_n, H * sizeof(float));
    const float* z = rz + H;
    float* h = s.h + r * H;
    for (size_t j = 0; j < H; ++j) {
      h[j] = (1.0f - z[j]) * n[j] + z[j] * h[j];
      y[j] = h[j];
    }
  }
}

void BackwardGru(const CellBackward& s) {
  const size_t H = s.hidden;
  for (size_t r = 0; r < s.rows; ++r) {
    const float* dh = s.dh + r * H;
    float* dg_in = s.dgates_in + r * s.gates_ld;
    float* dg_rec = s.dgates_rec + r * s.gates_ld;
    float* dh_prev = s.dh_prev + r * H;
    if (!Active(s.active, r)) {
      ZeroRow(dg_in, 3 * H);
      ZeroRow(dg_rec, 3 * H);
      std::memcpy(dh_prev, dh, H * sizeof(float));
      continue;
    }
    const float* rg = s.gates + r * s.gates_ld;
    const float* z = rg + H;
    const float* n = z + H;
    const float* hn = s.saved_hn + r * H;
    const float* h_prev = s.h_prev + r * H;
    for (size_t j = 0; j < H; ++j) {
      const float dn_pre = dh[j] * (1.0f - z[j]) * (1.0f - n[j] * n[j]);
      const float dr_pre = dn_pre * hn[j] * rg[j] * (1.0f - rg[j]);
      const float dz_pre = dh[j] * (h_prev[j] - n[j]) * z[j] * (1.0f - z[j]);
      dg_in[j] = dr_pre;
      dg_in[H + j] = dz_pre;
      dg_in[2 * H + j] = dn_pre;
      dg_rec[j] = dr_pre;
      dg_rec[H + j] = dz_pre;
      dg_rec[2 * H + j] = dn_pre * rg[j];
      dh_prev[j] = dh[j] * z[j];
    }
  }
}

const CellInfo kCells[] = {
    {"tanh", 1, false, false, false},
    {"relu", 1, false, false, false},
    {"lstm", 4, true, true, false},
    {"gru", 3, false, true, true},
};

}  // namespace

const CellInfo& cell_info(CellKind kind) { return kCells[static_cast<int>(kind)]; }

bool parse_cell(const char* name, CellKind* out) {
  for (int k = 0; k < 4; ++k) {
    if (std::strcmp(name, kCells[k].name) == 0) {
      *out = static_cast<CellKind>(k);
      return true;
    }
  }
  return false;
}

void cell_forward(const kernels::KernelSet& ks, CellKind kind, const CellForward& step) {
  switch (kind) {
    case CellKind::kTanh: return ForwardElman(ks, step, false);
    case CellKind::kRelu: return ForwardElman(ks, step, true);
    case CellKind::kLstm: return ForwardLstm(ks, step);
    case CellKind::kGru: return ForwardGru(ks, step);
  }
}

void cell_backward(const kernels::KernelSet& ks, CellKind kind, const CellBackward& step) {
  switch (kind) {
    case CellKind::kTanh: return BackwardElman(step, false);
    case CellKind::kRelu: return BackwardElman(step, true);
    case CellKind::kLstm: return BackwardLstm(ks, step);
    case CellKind::kGru: return BackwardGru(step);
  }
}

}  // namespace engine
}  // namespace bptt
