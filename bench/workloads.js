'use strict';
/**
 * The benchmark workloads of issue 3, their FLOP counts, the memory a step must hold, and
 * deterministic data for them. Shared by bench/run.js and bench/peers-tfjs.js so that every
 * implementation trains on the same shapes and the same numbers.
 */

/**
 * One training step = forward + full BPTT + global-norm clip + SGD update, float32. C1-C3 are the
 * default one-layer tanh model (issue 3); L1, L2 and G2 the gated cells on the recurrent engine
 * (issue 10).
 */
const WORKLOADS = {
  C1: { name: 'C1', title: 'min-char-rnn', inputs: 'tokens', D: 65, H: 100, K: 65, T: 25, B: 1 },
  C2: { name: 'C2', title: 'char-batched', inputs: 'tokens', D: 65, H: 256, K: 65, T: 64, B: 32 },
  C3: { name: 'C3', title: 'dense-large', inputs: 'dense', D: 256, H: 512, K: 256, T: 100, B: 64 },
  L1: { name: 'L1', title: 'lstm-char', cell: 'lstm', inputs: 'tokens', D: 65, H: 256, K: 65, T: 64, B: 32 },
  L2: { name: 'L2', title: 'lstm-dense', cell: 'lstm', inputs: 'dense', D: 256, H: 512, K: 256, T: 100, B: 64 },
  G2: { name: 'G2', title: 'gru-dense', cell: 'gru', inputs: 'dense', D: 256, H: 512, K: 256, T: 100, B: 64 },
};

/** Gate blocks of a workload's cell: 1 for the tanh RNN, 4 for LSTM, 3 for GRU. */
function gates(w) {
  return w.cell === 'lstm' ? 4 : w.cell === 'gru' ? 3 : 1;
}

/** Hyperparameters every implementation uses: a realistic char-rnn step that stays finite for thousands of steps. */
const STEP_OPTIONS = { lr: 0.01, clipNorm: 5 };

/**
 * FLOPs of one step. `dense` is the issues' count, 3 · 2·T·B·(G·D·H + G·H·H + H·K) with G gate
 * blocks per cell (1 for C1-C3): each forward
 * product and two of the same size in the backward pass (data and weight gradients). It is what
 * a library multiplying one-hot matrices does, so GFLOP/s compare across libraries and with the
 * issue's targets. (It includes a gradient with respect to the inputs, 2·T·B·D·H, that nobody
 * computes; kept as the issue defines it.) For token inputs the input projection is a gather:
 * `actual` leaves out the forward U·x and the dU product (2·T·B·D·H each), and `gatherSaving` is
 * the difference.
 */
function flops(w) {
  const { T, B, D, H, K } = w;
  const G = gates(w);
  const dense = 3 * 2 * T * B * (G * D * H + G * H * H + H * K);
  const gatherSaving = w.inputs === 'tokens' ? 2 * (2 * T * B * G * D * H) : 0;
  return { dense, actual: dense - gatherSaving, gatherSaving };
}

/**
 * Bytes a step must hold at once, float32: parameters and their gradients (2·P with
 * P = D·H + H·H + H + H·K + K), the states of every step for BPTT (T·B·H), the logits or their
 * gradient (T·B·K), the inputs (T·B·D floats dense, T·B int32 tokens), the targets (T·B int32)
 * and hT (B·H).
 */
function stepMemory(w) {
  const { T, B, D, H, K } = w;
  const params = D * H + H * H + H + H * K + K;
  const parts = {
    paramsAndGrads: 4 * 2 * params,
    states: 4 * T * B * H,
    logits: 4 * T * B * K,
    inputs: 4 * T * B * (w.inputs === 'dense' ? D : 1),
    targets: 4 * T * B,
    hT: 4 * B * H,
  };
  const total = Object.values(parts).reduce((a, b) => a + b, 0);
  return {
    formula: `4 bytes × (2·(D·H + H·H + H + H·K + K) + T·B·H + T·B·K + T·B·${w.inputs === 'dense' ? 'D' : '1'} + T·B + B·H)`,
    parts,
    total,
  };
}

/** xorshift32: the same data on every run and in every implementation, independent of Math.random. */
function makeRandom(seed) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    // Irwin–Hall approximation of N(0, 1): good enough for input data, and cheap.
    normal: () => next() + next() + next() + next() + next() + next() + next() + next() + next() + next() + next() + next() - 6,
  };
}

/**
 * Inputs and targets as plain arrays: tokens Int32Array [T, B] in [0, D), or dense Float32Array
 * [T, B, D] ~ N(0, 1); targets Int32Array [T, B] in [0, K).
 */
function makeData(w, seed = 1234) {
  const rng = makeRandom(seed);
  const { T, B, D, K } = w;
  let inputs;
  if (w.inputs === 'tokens') {
    inputs = new Int32Array(T * B);
    for (let i = 0; i < inputs.length; i++) inputs[i] = rng.int(D);
  } else {
    inputs = new Float32Array(T * B * D);
    for (let i = 0; i < inputs.length; i++) inputs[i] = rng.normal();
  }
  const targets = new Int32Array(T * B);
  for (let i = 0; i < targets.length; i++) targets[i] = rng.int(K);
  return { inputs, targets };
}

module.exports = { WORKLOADS, STEP_OPTIONS, flops, stepMemory, makeData, makeRandom, gates };
