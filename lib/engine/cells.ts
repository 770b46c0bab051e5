/**
 * The cells' pointwise math, one entry per cell, for one step of one sequence. The driver
 * (reference.ts) does every matrix product; a cell only sees
 *   gi = W_ih x + b_ih   and   gh = W_hh h_prev + b_hh      (each G*H, gates stacked in rows)
 * and the previous state, and returns the new state. Its backward takes the gradient of the new
 * state and returns the gradients of gi and gh (the driver turns them into weight, input and
 * state gradients) plus the part of the previous state's gradient that does not pass through
 * W_hh. Keeping gi and gh apart is what lets the GRU's reset gate scale W_hn h + b_hn only.
 * Math exactly as PyTorch's nn.RNN, nn.LSTM, nn.GRU. float64 throughout.
 */
import { CellKind } from './spec';

export interface CellState {
  h: Float64Array;
  /** LSTM only, else null. */
  c: Float64Array | null;
}

export interface CellGradients {
  dgi: Float64Array;
  dgh: Float64Array;
  /** dL/dh_prev except the W_hh^T dgh the driver adds. */
  dhPrev: Float64Array;
  /** LSTM only, else null. */
  dcPrev: Float64Array | null;
}

export interface CellMath {
  forward(H: number, gi: Float64Array, gh: Float64Array, hPrev: Float64Array, cPrev: Float64Array | null): CellState;
  /** dh, dc: the gradient of this step's new h and c (dc null unless LSTM). Recomputes the forward from gi, gh and the previous state. */
  backward(H: number, gi: Float64Array, gh: Float64Array, hPrev: Float64Array, cPrev: Float64Array | null, dh: Float64Array, dc: Float64Array | null): CellGradients;
}

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));

/** h' = act(gi + gh) with act' expressed through the output (tanh: 1 - h^2; ReLU: h > 0). */
function simpleCell(act: (v: number) => number, derivativeFromOutput: (h: number) => number): CellMath {
  return {
    forward(H, gi, gh) {
      const h = new Float64Array(H);
      for (let j = 0; j < H; j++) h[j] = act(gi[j] + gh[j]);
      return { h, c: null };
    },
    backward(H, gi, gh, _hPrev, _cPrev, dh) {
      const dpre = new Float64Array(H);
      for (let j = 0; j < H; j++) dpre[j] = dh[j] * derivativeFromOutput(act(gi[j] + gh[j]));
      return { dgi: dpre, dgh: dpre, dhPrev: new Float64Array(H), dcPrev: null };
    },
  };
}

/** Gates i, f, g, o in rows [0,H), [H,2H), [2H,3H), [3H,4H). */
function lstmGates(H: number, gi: Float64Array, gh: Float64Array, j: number): { i: number; f: number; g: number; o: number } {
  return {
    i: sigmoid(gi[j] + gh[j]),
    f: sigmoid(gi[H + j] + gh[H + j]),
    g: Math.tanh(gi[2 * H + j] + gh[2 * H + j]),
    o: sigmoid(gi[3 * H + j] + gh[3 * H + j]),
  };
}

/** c' = f c + i g, h' = o tanh(c'). */
const lstm: CellMath = {
  forward(H, gi, gh, _hPrev, cPrev) {
    const h = new Float64Array(H);
    const c = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      const { i, f, g, o } = lstmGates(H, gi, gh, j);
      c[j] = f * (cPrev as Float64Array)[j] + i * g;
      h[j] = o * Math.tanh(c[j]);
    }
    return { h, c };
  },
  backward(H, gi, gh, _hPrev, cPrev, dh, dc) {
    const dpre = new Float64Array(4 * H);
    const dcPrev = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      const { i, f, g, o } = lstmGates(H, gi, gh, j);
      const cp = (cPrev as Float64Array)[j];
      const tc = Math.tanh(f * cp + i * g);
      const dcTotal = (dc as Float64Array)[j] + dh[j] * o * (1 - tc * tc);
      dpre[j] = dcTotal * g * i * (1 - i);
      dpre[H + j] = dcTotal * cp * f * (1 - f);
      dpre[2 * H + j] = dcTotal * i * (1 - g * g);
      dpre[3 * H + j] = dh[j] * tc * o * (1 - o);
      dcPrev[j] = dcTotal * f;
    }
    return { dgi: dpre, dgh: dpre, dhPrev: new Float64Array(H), dcPrev };
  },
};

/** Gates r, z, n in rows [0,H), [H,2H), [2H,3H); n = tanh(gi_n + r * gh_n). */
function gruGates(H: number, gi: Float64Array, gh: Float64Array, j: number): { r: number; z: number; n: number } {
  const r = sigmoid(gi[j] + gh[j]);
  return { r, z: sigmoid(gi[H + j] + gh[H + j]), n: Math.tanh(gi[2 * H + j] + r * gh[2 * H + j]) };
}

/** h' = (1 - z) n + z h. */
const gru: CellMath = {
  forward(H, gi, gh, hPrev) {
    const h = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      const { z, n } = gruGates(H, gi, gh, j);
      h[j] = (1 - z) * n + z * hPrev[j];
    }
    return { h, c: null };
  },
  backward(H, gi, gh, hPrev, _cPrev, dh) {
    const dgi = new Float64Array(3 * H);
    const dgh = new Float64Array(3 * H);
    const dhPrev = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      const { r, z, n } = gruGates(H, gi, gh, j);
      const dn = dh[j] * (1 - z) * (1 - n * n);
      const dr = dn * gh[2 * H + j] * r * (1 - r);
      const dz = dh[j] * (hPrev[j] - n) * z * (1 - z);
      dgi[j] = dgh[j] = dr;
      dgi[H + j] = dgh[H + j] = dz;
      dgi[2 * H + j] = dn;
      dgh[2 * H + j] = dn * r;
      dhPrev[j] = dh[j] * z;
    }
    return { dgi, dgh, dhPrev, dcPrev: null };
  },
};

export const CELLS: Readonly<Record<CellKind, CellMath>> = {
  tanh: simpleCell(Math.tanh, (h) => 1 - h * h),
  // PyTorch's ReLU backward passes the gradient where the output is > 0 (so 0 at a zero pre-activation).
  relu: simpleCell((v) => Math.max(v, 0), (h) => (h > 0 ? 1 : 0)),
  lstm,
  gru,
};
