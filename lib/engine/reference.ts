/**
 * The specification of the recurrent engine: a pure-TS float64 forward and backward of stacked,
 * optionally bidirectional tanh/ReLU RNN, LSTM and GRU layers over variable-length batches,
 * written for clarity (every native path is tested against it). The cells' pointwise math is in
 * cells.ts, the contract and its validation in spec.ts, the dropout masks in dropout.ts.
 *
 * For layer l and direction d (0 forward over t = 0 .. len-1, 1 reverse over t = len-1 .. 0),
 * each step of sequence b computes gi = W_ih x_t + b_ih and gh = W_hh h_prev + b_hh and hands
 * them to the cell. Layer l > 0 reads X_l = Y_{l-1} (times the dropout mask in training). Steps
 * t >= lengths[b] are padding: not computed, output 0, no gradient.
 *
 * Backward, for each layer from the top, each direction:
 *   1. the gate gradients dgi, dgh of every step, from the gradient that enters the layer's
 *      output (dy for the top layer, the layer above's dX below) and dhT/dcT: either the ordinary
 *      backward recurrence (full BPTT) or, with truncate k, one walk of at most k steps back from
 *      each entry point (truncatedGateGradients);
 *   2. the weight gradients and dX from the gate gradients and the saved forward values.
 */
import { FloatArray } from '../backend';
import { DisposedError } from '../errors';
import { addMatTVec, addMatVec, addOuter, row } from '../math64';
import { CELLS, CellMath } from './cells';
import { dropoutScales } from './dropout';
import {
  LayerBackwardArgs,
  LayerBackwardResult,
  LayerBatch,
  LayerForwardOptions,
  LayerForwardResult,
  LayerInput,
  LayerSpec,
  LayerWeights,
  NormalizedLayerBackwardArgs,
  NormalizedLayerBatch,
  NormalizedLayerSpec,
  SavedForward,
  SavedOwner,
  checkLayerBackwardRequest,
  checkLayerForwardRequest,
  checkLayerSpec,
  checkLayerWeights,
  dropoutActive,
  gatesPerCell,
  hasCellState,
  layerInputSize,
  layerOutputSize,
  layerParameterTable,
  numDirections,
  parameterName,
} from './spec';

const BACKEND_NAME = 'reference';

function addTo(y: Float64Array, x: ArrayLike<number>): void {
  for (let i = 0; i < y.length; i++) y[i] += x[i];
}

/** A float64 copy of row `index` of a (zeros when a is null). */
function copyRow(a: FloatArray | null, index: number, width: number): Float64Array {
  return a ? Float64Array.from(a.subarray(index * width, (index + 1) * width)) : new Float64Array(width);
}

/** The first step a direction processes, and the step it processes after s. */
const firstStep = (direction: number, length: number): number => (direction === 0 ? 0 : length - 1);
const lastStep = (direction: number, length: number): number => (direction === 0 ? length - 1 : 0);
const nextStep = (direction: number, s: number): number => (direction === 0 ? s + 1 : s - 1);
const previousStep = (direction: number, s: number): number => (direction === 0 ? s - 1 : s + 1);

/** What one layer-direction's forward saved, per row r = t*B + b (untouched at padding). */
interface DirectionRecord {
  gi: Float64Array; // [T, B, G*H]: W_ih x + b_ih
  gh: Float64Array; // [T, B, G*H]: W_hh h_prev + b_hh
  hPrev: Float64Array; // [T, B, H]: the state the step started from
  cPrev: Float64Array | null; // [T, B, H], LSTM only
}

interface ForwardRecord {
  lengths: Int32Array;
  /** Layer 0's token ids (copied), or null for dense input. */
  tokens: Int32Array | null;
  /** inputs[l] = X_l [T, B, layerInputSize(l)] in float64 (copied); inputs[0] is null for tokens. */
  inputs: (Float64Array | null)[];
  /** masks[l]: the dropout factor of each element of Y_l (0 or 1/(1-p)), or null without dropout. */
  masks: (Float64Array | null)[];
  /** Index l*dirs + d. */
  directions: DirectionRecord[];
}

export class ReferenceSavedForward implements SavedForward {
  readonly backend = BACKEND_NAME;
  #record: ForwardRecord | null;

  constructor(
    readonly spec: NormalizedLayerSpec,
    readonly steps: number,
    readonly batch: number,
    readonly inputKind: LayerInput['kind'],
    record: ForwardRecord,
  ) {
    this.#record = record;
  }

  get isDisposed(): boolean {
    return this.#record === null;
  }

  dispose(): void {
    this.#record = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** The saved values, for layerBackward. */
  get record(): ForwardRecord {
    if (this.#record === null) throw new DisposedError('saved was disposed; run layerForward again to get a new one');
    return this.#record;
  }
}

/** One layer-direction's weights and sizes, and its saved values. */
class LayerDirection {
  readonly H: number;
  readonly GH: number;
  readonly inW: number;
  readonly cell: CellMath;
  readonly Wih: FloatArray;
  readonly Whh: FloatArray;
  readonly bih: FloatArray;
  readonly bhh: FloatArray;

  constructor(
    spec: NormalizedLayerSpec,
    weights: LayerWeights,
    readonly layer: number,
    readonly direction: number,
    readonly rec: DirectionRecord,
  ) {
    this.H = spec.hiddenSize;
    this.GH = gatesPerCell(spec.cell) * this.H;
    this.inW = layerInputSize(spec, layer);
    this.cell = CELLS[spec.cell];
    this.Wih = weights[parameterName('weight_ih', layer, direction)];
    this.Whh = weights[parameterName('weight_hh', layer, direction)];
    this.bih = weights[parameterName('bias_ih', layer, direction)];
    this.bhh = weights[parameterName('bias_hh', layer, direction)];
  }

  /** gi = W_ih x + b_ih for layer input x at row r (a one-hot column for tokens). */
  inputGates(record: ForwardRecord, r: number): Float64Array {
    const gi = Float64Array.from(this.bih);
    const x = record.inputs[this.layer];
    if (x === null) {
      const token = (record.tokens as Int32Array)[r];
      for (let i = 0; i < this.GH; i++) gi[i] += this.Wih[i * this.inW + token];
    } else {
      addMatVec(gi, this.Wih, row(x, r, this.inW), this.GH, this.inW);
    }
    return gi;
  }

  /**
   * One cell step back at row r: adds the step's gate gradients to dGi/dGh and returns the
   * gradient of the state the step started from.
   */
  stepBackward(r: number, dh: Float64Array, dc: Float64Array | null, dGi: Float64Array, dGh: Float64Array): { dh: Float64Array; dc: Float64Array | null } {
    const { H, GH, rec } = this;
    const cPrev = rec.cPrev ? row(rec.cPrev, r, H) : null;
    const g = this.cell.backward(H, row(rec.gi, r, GH), row(rec.gh, r, GH), row(rec.hPrev, r, H), cPrev, dh, dc);
    addTo(row(dGi, r, GH), g.dgi);
    addTo(row(dGh, r, GH), g.dgh);
    const dhPrev = g.dhPrev;
    addMatTVec(dhPrev, this.Whh, g.dgh, GH, H);
    return { dh: dhPrev, dc: g.dcPrev };
  }
}

function forward(spec: NormalizedLayerSpec, weights: LayerWeights, batch: NormalizedLayerBatch, training: boolean, dropoutSeed: number): LayerForwardResult<Float64Array> {
  const { steps: T, batch: B } = batch;
  const { hiddenSize: H, numLayers: L } = spec;
  const dirs = numDirections(spec);
  const width = layerOutputSize(spec);
  const withCell = hasCellState(spec.cell);
  const GH = gatesPerCell(spec.cell) * H;
  const lengths = batch.lengths ? Int32Array.from(batch.lengths) : new Int32Array(B).fill(T);
  const h0 = batch.h0 ? Float64Array.from(batch.h0) : new Float64Array(L * dirs * B * H);
  const c0 = withCell ? (batch.c0 ? Float64Array.from(batch.c0) : new Float64Array(L * dirs * B * H)) : null;
  const record: ForwardRecord = {
    lengths,
    tokens: batch.input.kind === 'tokens' ? Int32Array.from(batch.input.data) : null,
    inputs: [batch.input.kind === 'dense' ? Float64Array.from(batch.input.data) : null],
    masks: [],
    directions: [],
  };
  const hT = new Float64Array(L * dirs * B * H);
  const cT = withCell ? new Float64Array(L * dirs * B * H) : null;
  let Y = new Float64Array(0);
  for (let l = 0; l < L; l++) {
    Y = new Float64Array(T * B * width);
    for (let d = 0; d < dirs; d++) {
      const rec: DirectionRecord = {
        gi: new Float64Array(T * B * GH),
        gh: new Float64Array(T * B * GH),
        hPrev: new Float64Array(T * B * H),
        cPrev: withCell ? new Float64Array(T * B * H) : null,
      };
      record.directions.push(rec);
      const ld = new LayerDirection(spec, weights, l, d, rec);
      const state = l * dirs + d;
      for (let b = 0; b < B; b++) {
        let h: Float64Array = row(h0, state * B + b, H);
        let c: Float64Array | null = c0 ? row(c0, state * B + b, H) : null;
        for (let t = firstStep(d, lengths[b]); t >= 0 && t < lengths[b]; t = nextStep(d, t)) {
          const r = t * B + b;
          const gi = ld.inputGates(record, r);
          const gh = Float64Array.from(ld.bhh);
          addMatVec(gh, ld.Whh, h, GH, H);
          rec.gi.set(gi, r * GH);
          rec.gh.set(gh, r * GH);
          rec.hPrev.set(h, r * H);
          if (c && rec.cPrev) rec.cPrev.set(c, r * H);
          ({ h, c } = ld.cell.forward(H, gi, gh, h, c));
          Y.set(h, r * width + d * H);
        }
        hT.set(h, (state * B + b) * H);
        if (c && cT) cT.set(c, (state * B + b) * H);
      }
    }
    if (l < L - 1) {
      const mask = dropoutActive(spec, training) ? dropoutScales(dropoutSeed, l, spec.dropout, Y.length) : null;
      record.masks.push(mask);
      record.inputs.push(mask ? Y.map((v, i) => v * mask[i]) : Y);
    }
  }
  const saved = new ReferenceSavedForward(spec, T, B, batch.input.kind, record);
  return { y: Y, hT, cT, saved };
}

/** Full BPTT: the ordinary backward recurrence of each sequence, from its last step to its first. */
function fullGateGradients(ld: LayerDirection, record: ForwardRecord, dY: FloatArray, args: NormalizedLayerBackwardArgs, dh0: Float64Array, dc0: Float64Array | null, dGi: Float64Array, dGh: Float64Array, dirs: number): void {
  const { H } = ld;
  const B = record.lengths.length;
  const state = ld.layer * dirs + ld.direction;
  for (let b = 0; b < B; b++) {
    const len = record.lengths[b];
    let dh = copyRow(args.dhT, state * B + b, H);
    let dc = dc0 ? copyRow(args.dcT, state * B + b, H) : null;
    for (let s = lastStep(ld.direction, len); s >= 0 && s < len; s = previousStep(ld.direction, s)) {
      const r = s * B + b;
      addTo(dh, copyRow(dY, r * dirs + ld.direction, H));
      ({ dh, dc } = ld.stepBackward(r, dh, dc, dGi, dGh));
    }
    addTo(row(dh0, state * B + b, H), dh);
    if (dc0 && dc) addTo(row(dc0, state * B + b, H), dc);
  }
}

/**
 * Truncated BPTT by its definition: the gradient entering the layer's output at step t (with
 * dhT/dcT at each sequence's last step) travels back through the steps t, t-1, ..., t-k+1 only
 * (t, ..., t+k-1 for the reverse direction); at each it leaves its gate gradients, and the state
 * gradient the k-th step emits is dropped, unless that step is the direction's first, whose
 * state gradient is dh0/dc0. One walk per entry point.
 */
function truncatedGateGradients(ld: LayerDirection, record: ForwardRecord, dY: FloatArray, args: NormalizedLayerBackwardArgs, k: number, dh0: Float64Array, dc0: Float64Array | null, dGi: Float64Array, dGh: Float64Array, dirs: number): void {
  const { H } = ld;
  const B = record.lengths.length;
  const state = ld.layer * dirs + ld.direction;
  for (let b = 0; b < B; b++) {
    const len = record.lengths[b];
    for (let t = 0; t < len; t++) {
      const r = t * B + b;
      // The direction's slice of dy at (t, b); dhT/dcT join the entry at the sequence's last step.
      let dh = copyRow(dY, r * dirs + ld.direction, H);
      let dc: Float64Array | null = dc0 ? new Float64Array(H) : null;
      if (t === lastStep(ld.direction, len)) {
        addTo(dh, copyRow(args.dhT, state * B + b, H));
        if (dc) addTo(dc, copyRow(args.dcT, state * B + b, H));
      }
      let s = t;
      for (let n = 0; n < k; n++) {
        ({ dh, dc } = ld.stepBackward(s * B + b, dh, dc, dGi, dGh));
        if (s === firstStep(ld.direction, len)) {
          addTo(row(dh0, state * B + b, H), dh);
          if (dc0 && dc) addTo(row(dc0, state * B + b, H), dc);
          break;
        }
        s = previousStep(ld.direction, s);
      }
    }
  }
}

/** Weight gradients and the gradient of the layer's input from the gate gradients of every step. */
function accumulateWeightGradients(ld: LayerDirection, record: ForwardRecord, dGi: Float64Array, dGh: Float64Array, grads: LayerWeights<Float64Array>, dX: Float64Array | null): void {
  const { H, GH, inW, layer, direction } = ld;
  const dWih = grads[parameterName('weight_ih', layer, direction)];
  const dWhh = grads[parameterName('weight_hh', layer, direction)];
  const dbih = grads[parameterName('bias_ih', layer, direction)];
  const dbhh = grads[parameterName('bias_hh', layer, direction)];
  const x = record.inputs[layer];
  const B = record.lengths.length;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < record.lengths[b]; t++) {
      const r = t * B + b;
      const dgi = row(dGi, r, GH);
      const dgh = row(dGh, r, GH);
      if (x === null) {
        const token = (record.tokens as Int32Array)[r];
        for (let i = 0; i < GH; i++) dWih[i * inW + token] += dgi[i];
      } else {
        addOuter(dWih, dgi, row(x, r, inW));
      }
      addTo(dbih, dgi);
      addOuter(dWhh, dgh, row(ld.rec.hPrev, r, H));
      addTo(dbhh, dgh);
      if (dX) addMatTVec(row(dX, r, inW), ld.Wih, dgi, GH, inW);
    }
  }
}

function backward(spec: NormalizedLayerSpec, weights: LayerWeights, saved: ReferenceSavedForward, args: NormalizedLayerBackwardArgs): LayerBackwardResult<Float64Array> {
  const record = saved.record;
  const { steps: T, batch: B } = saved;
  const { hiddenSize: H, numLayers: L } = spec;
  const dirs = numDirections(spec);
  const GH = gatesPerCell(spec.cell) * H;
  const grads: LayerWeights<Float64Array> = {};
  for (const p of layerParameterTable(spec)) grads[p.name] = new Float64Array(p.size);
  const dh0 = new Float64Array(L * dirs * B * H);
  const dc0 = hasCellState(spec.cell) ? new Float64Array(L * dirs * B * H) : null;
  let dY: FloatArray = args.dy; // the gradient entering layer l's output
  let dx: Float64Array | null = null;
  for (let l = L - 1; l >= 0; l--) {
    const dX = record.inputs[l] ? new Float64Array(T * B * layerInputSize(spec, l)) : null;
    for (let d = 0; d < dirs; d++) {
      const ld = new LayerDirection(spec, weights, l, d, record.directions[l * dirs + d]);
      const dGi = new Float64Array(T * B * GH);
      const dGh = new Float64Array(T * B * GH);
      if (args.truncate === null) fullGateGradients(ld, record, dY, args, dh0, dc0, dGi, dGh, dirs);
      else truncatedGateGradients(ld, record, dY, args, args.truncate, dh0, dc0, dGi, dGh, dirs);
      accumulateWeightGradients(ld, record, dGi, dGh, grads, dX);
    }
    if (l > 0) {
      const mask = record.masks[l - 1];
      dY = mask ? (dX as Float64Array).map((v, i) => v * mask[i]) : (dX as Float64Array);
    } else {
      dx = dX;
    }
  }
  return { dx, dh0, dc0, grads };
}

/** The reference backend's layerForward: validates, then runs in float64. Accepts Float64Array everywhere a float array goes. */
export function layerForward(spec: LayerSpec, weights: LayerWeights, batch: LayerBatch, options?: LayerForwardOptions): LayerForwardResult<Float64Array> {
  const req = checkLayerForwardRequest(spec, weights, batch, options, true);
  return forward(req.spec, weights, req.batch, req.options.training, req.options.dropoutSeed);
}

const OWNER: SavedOwner = { name: BACKEND_NAME, owns: (saved) => saved instanceof ReferenceSavedForward };

export function layerBackward(spec: LayerSpec, weights: LayerWeights, saved: SavedForward, args: LayerBackwardArgs): LayerBackwardResult<Float64Array> {
  const req = checkLayerBackwardRequest(spec, weights, saved, args, OWNER, true);
  return backward(req.spec, weights, saved as ReferenceSavedForward, req.args);
}

/**
 * The gradient diagnostics' specification: each step t of `dy` [T, B, dirs*H] (the gradient of
 * the top layer's output) is a separate source L_t. Returns, for every layer-direction (index
 * l*dirs + d), source t and step s, the squared norm of dL_t/dh_s summed over the batch rows
 * active at s: [L*dirs, T, T] (source-major). With `probes` [L*dirs, T, B, H] instead, probe t of
 * a layer-direction enters its own state h_t and travels through that recurrence only (the
 * norms are then of u^T dh_t/dh_s). One ordinary backward pass per source, in float64.
 */
export function sourceGradientNorms(spec: LayerSpec, weights: LayerWeights, saved: SavedForward, sources: { dy: FloatArray } | { probes: FloatArray }): Float64Array {
  if (!(saved instanceof ReferenceSavedForward)) throw new TypeError('saved must come from the reference layerForward');
  const s = checkLayerSpec(spec);
  checkLayerWeights(s, weights, true);
  const record = saved.record;
  const { steps: T, batch: B } = saved;
  const { hiddenSize: H, numLayers: L } = s;
  const dirs = numDirections(s);
  const width = layerOutputSize(s);
  const withCell = hasCellState(s.cell);
  const GH = gatesPerCell(s.cell) * H;
  const norms = new Float64Array(L * dirs * T * T);
  // Walks one layer-direction back over every row's steps; entry(step, b) is the gradient joining h there.
  const walk = (ld: LayerDirection, t: number, entry: (step: number, b: number) => ArrayLike<number> | null, dGi: Float64Array): void => {
    const dGh = new Float64Array(T * B * GH);
    const index = ld.layer * dirs + ld.direction;
    for (let b = 0; b < B; b++) {
      const len = record.lengths[b];
      let dh: Float64Array = new Float64Array(H);
      let dc: Float64Array | null = withCell ? new Float64Array(H) : null;
      for (let step = lastStep(ld.direction, len); step >= 0 && step < len; step = previousStep(ld.direction, step)) {
        const e = entry(step, b);
        if (e) addTo(dh, e);
        let sum = 0;
        for (const v of dh) sum += v * v;
        norms[(index * T + t) * T + step] += sum;
        ({ dh, dc } = ld.stepBackward(step * B + b, dh, dc, dGi, dGh));
      }
    }
  };
  for (let t = 0; t < T; t++) {
    if ('probes' in sources) {
      for (let index = 0; index < L * dirs; index++) {
        const ld = new LayerDirection(s, weights, Math.floor(index / dirs), index % dirs, record.directions[index]);
        const probe = (step: number, b: number) => (step === t ? sources.probes.subarray(((index * T + t) * B + b) * H, ((index * T + t) * B + b + 1) * H) : null);
        walk(ld, t, probe, new Float64Array(T * B * GH));
      }
      continue;
    }
    // Source t alone: dy at step t, zero elsewhere.
    let dY: Float64Array<ArrayBufferLike> = new Float64Array(T * B * width);
    dY.set(sources.dy.subarray(t * B * width, (t + 1) * B * width), t * B * width);
    for (let l = L - 1; l >= 0; l--) {
      const inW = layerInputSize(s, l);
      const dX = new Float64Array(T * B * inW);
      for (let d = 0; d < dirs; d++) {
        const ld = new LayerDirection(s, weights, l, d, record.directions[l * dirs + d]);
        const dGi = new Float64Array(T * B * GH);
        const upstream = dY;
        walk(ld, t, (step, b) => upstream.subarray((step * B + b) * width + d * H, (step * B + b) * width + (d + 1) * H), dGi);
        for (let r = 0; r < T * B; r++) addMatTVec(row(dX, r, inW), ld.Wih, row(dGi, r, GH), GH, inW);
      }
      if (l === 0) break;
      const mask = record.masks[l - 1];
      dY = mask ? dX.map((v, i) => v * mask[i]) : dX;
    }
  }
  return norms;
}
