/**
 * Misalignment in online TBPTT(k1, k2): the gradient an update uses was computed through states
 * that older weights produced, while the update is applied to the current ones.
 *
 * The stream (inputs [N, B], a tokens-head model, unidirectional) runs forward from a zero
 * state; every k1 steps, at t_n = n·k1, update n takes the window [max(0, t_n − k2), t_n)
 * starting from the state the run carried into it, counts the loss of its last k1 steps (the
 * model's own reduction), backpropagates through the whole window and applies plain SGD,
 * θ_n = θ_{n−1} − lr·g. Every step of the stream is computed once, with the weights in force
 * when the run passed it, so a window longer than k1 holds steps of several weight versions:
 *   g_time  the gradient through those stored steps, each with the weights of its time (what
 *           online TBPTT applies);
 *   g_now   the same window recomputed from the same start state with θ_{n−1}, the weights the
 *           update is applied to.
 * Per update: ‖g_time − g_now‖/‖g_now‖ and their cosine over all trained parameters. With
 * k2 <= k1 every window lies in one segment of one weight version and the two agree. The model
 * is left as it was.
 */
import { Tensor } from '../tensor';
import { RNN } from '../rnn';
import { native } from '../backends/native';
import { reference } from '../backends/reference';

/**
 * One update's misalignment.
 *
 * @example
 * ```ts
 * import type { MisalignmentEntry } from 'bptt';
 *
 * const e: MisalignmentEntry = { update: 1, step: 8, relativeError: 0.01, cosine: 0.9999 };
 * console.log(e.relativeError);
 * ```
 */
export interface MisalignmentEntry {
  /** n = 1, 2, ... */
  update: number;
  /** t_n: the stream step the update happens at (its window ends there). */
  step: number;
  relativeError: number;
  cosine: number;
}

/**
 * Options of {@link tbpttMisalignment}.
 *
 * @example
 * ```ts
 * import type { MisalignmentOptions } from 'bptt';
 *
 * const options: MisalignmentOptions = { k1: 4, k2: 12, lr: 0.5 };
 * console.log(options.k2);
 * ```
 */
export interface MisalignmentOptions {
  /** Steps between updates (integer >= 1). */
  k1: number;
  /** Steps each update backpropagates through (integer >= 1). */
  k2: number;
  /** SGD learning rate (finite, >= 0). */
  lr: number;
}

function checkCount(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be an integer >= 1, got ${String(v)}`);
  return v;
}

/** The stream's time slice [a, b) of a [N, B, ...] tensor. */
function slice(t: Tensor, a: number, b: number): Tensor {
  const per = t.shape.slice(1).reduce((x, y) => x * y, 1);
  const data = t.data().slice(a * per, b * per);
  return Tensor.from(data as Float32Array | Int32Array, [b - a, ...t.shape.slice(1)]);
}

interface State {
  h: Float32Array;
  c: Float32Array | null;
}

/**
 * Misalignment of online TBPTT(k1, k2) on a stream (see the module comment): one entry per
 * update. Validates its arguments (TypeError, RangeError, and the model's own errors).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Tensor, tbpttMisalignment } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 4, hiddenSize: 8, outputSize: 4, cell: 'lstm', seed: 1 });
 * const x = Tensor.from(Int32Array.from({ length: 48 }, (_, i) => (i * 5) % 4), [24, 2]);
 * const y = Tensor.from(Int32Array.from({ length: 48 }, (_, i) => (i * 3) % 4), [24, 2]);
 * const late = tbpttMisalignment(rnn, x, y, { k1: 4, k2: 12, lr: 1 });
 * assert.equal(late.length, 6);
 * assert.ok(late[5].relativeError > 0); // windows span several weight versions
 * assert.ok(tbpttMisalignment(rnn, x, y, { k1: 4, k2: 4, lr: 1 }).every((e) => e.relativeError === 0));
 * ```
 */
export function tbpttMisalignment(model: RNN, inputs: Tensor, targets: Tensor, options: MisalignmentOptions): MisalignmentEntry[] {
  if (!(model instanceof RNN)) throw new TypeError(`model must be an RNN, got ${String(model)}`);
  if (!(inputs instanceof Tensor) || !(targets instanceof Tensor)) throw new TypeError('inputs and targets must be Tensors ([N, B] streams)');
  if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object { k1, k2, lr }, got ${String(options)}`);
  const k1 = checkCount('k1', options.k1);
  const k2 = checkCount('k2', options.k2);
  const lr = options.lr;
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) throw new RangeError(`lr must be a finite number >= 0, got ${String(lr)}`);
  if (model.bidirectional) throw new TypeError('TBPTT runs a stream forward in time: a bidirectional model has no online TBPTT');
  if (model.head.kind !== 'tokens') throw new TypeError(`tbpttMisalignment needs the tokens head (a loss at every step), got '${model.head.kind}'`);
  if (targets.dtype !== 'int32' || targets.shape.length !== 2 || targets.shape[0] !== inputs.shape[0] || targets.shape[1] !== inputs.shape[1]) {
    throw new TypeError(`targets must be int32 [N, B] like the inputs' first two sizes, got ${targets.toString()}`);
  }
  const N = inputs.shape[0];
  const B = inputs.shape[1];
  const names = Object.keys(model.params);
  const original = Object.fromEntries(names.map((n) => [n, Float32Array.from(model.params[n].data() as Float32Array)]));
  const legacy = 'U' in model.params;
  // The layer API's gradient names as the model's (the legacy model's single bias b is bias_ih).
  const modelName = (layerName: string): string | null =>
    legacy ? ({ weight_ih_l0: 'U', weight_hh_l0: 'W', bias_ih_l0: 'b' } as Record<string, string>)[layerName] ?? null : `rnn.${layerName}`;
  const lstm = model.cell === 'lstm';
  const stateShape = model.stateShape(B);
  const backend = model.backend === 'native' ? native : reference;
  const dropout = model.dropout > 0 ? { training: false } : {};

  // Step boundaries: every segment end t_n and every window start; a piece between two
  // boundaries runs with one weight version.
  const updates: number[] = [];
  for (let t = k1; t <= N; t += k1) updates.push(t);
  const bounds = [...new Set([0, N, ...updates, ...updates.map((t) => Math.max(0, t - k2))])].sort((a, b) => a - b);
  const states = new Map<number, State>(); // the online run's state at each boundary
  const weightsAt: Float32Array[][] = []; // θ_j as arrays in `names` order, j = 0 .. updates
  const snapshot = () => names.map((n) => Float32Array.from(model.params[n].data() as Float32Array));
  const restore = (theta: Float32Array[]) => model.setParams(Object.fromEntries(names.map((n, i) => [n, theta[i]])));
  const segmentOf = (a: number) => Math.floor(a / k1); // the piece [a, ...) ran with θ_segment
  const stateOptions = (s: State) => ({ h0: Tensor.from(s.h, stateShape), ...(s.c ? { c0: Tensor.from(s.c, stateShape) } : {}) });

  /** The window's targets with the steps before its last k1 ignored. */
  const windowTargets = (p0: number, p1: number, t: number) =>
    Tensor.from(Int32Array.from(slice(targets, p0, p1).data() as Int32Array, (y, r) => (p0 + Math.floor(r / B) < t - k1 ? -1 : y)), [p1 - p0, B]);
  const add = (total: Record<string, Float64Array>, grads: Record<string, Tensor>) => {
    for (const n of names) total[n].forEach((_, j, arr) => (arr[j] += (grads[n].data() as Float32Array)[j]));
  };
  const zeros = () => Object.fromEntries(names.map((n) => [n, new Float64Array(model.params[n].size)])) as Record<string, Float64Array>;

  /** g_now: one backward pass over the window [a, t) with θ. */
  const recomputed = (a: number, t: number, theta: Float32Array[]): Record<string, Float64Array> => {
    restore(theta);
    const r = model.lossAndGradients(slice(inputs, a, t), windowTargets(a, t, t), { ...stateOptions(states.get(a)!), reduction: 'sum', ...dropout });
    const total = zeros();
    add(total, r.grads);
    for (const g of Object.values(r.grads)) g.dispose();
    return total;
  };

  /**
   * g_time: the window's pieces from the last to the first, each with the weights it ran with:
   * its own loss's gradient plus, through its final state, the later pieces' (dhT/dcT carried).
   */
  const online = (a: number, t: number): Record<string, Float64Array> => {
    const total = zeros();
    const pieces = bounds.filter((x) => x >= a && x < t);
    let carry: State | null = null; // dL/d(state at the end of the piece being processed)
    for (let i = pieces.length - 1; i >= 0; i--) {
      const p0 = pieces[i];
      const p1 = i + 1 < pieces.length ? pieces[i + 1] : t;
      restore(weightsAt[segmentOf(p0)]);
      const own = model.lossAndGradients(slice(inputs, p0, p1), windowTargets(p0, p1, t), { ...stateOptions(states.get(p0)!), reduction: 'sum', ...dropout });
      add(total, own.grads);
      const next: State = { h: Float32Array.from(own.grads.h0.data() as Float32Array), c: lstm ? Float32Array.from(own.grads.c0.data() as Float32Array) : null };
      if (carry) {
        // The later pieces' loss reaches this piece through its final state.
        const view = model.layerView();
        const x = slice(inputs, p0, p1);
        const input = x.dtype === 'int32' ? { kind: 'tokens' as const, data: x.data() as Int32Array } : { kind: 'dense' as const, data: x.data() as Float32Array };
        const s = states.get(p0)!;
        const fwd = backend.layerForward(view.spec, view.weights, { steps: p1 - p0, batch: B, input, h0: s.h, c0: s.c });
        const back = backend.layerBackward(view.spec, view.weights, fwd.saved, { dy: new Float32Array(fwd.y.length), dhT: carry.h, dcT: carry.c });
        fwd.saved.dispose();
        for (const [ln, g] of Object.entries(back.grads)) {
          const n = modelName(ln);
          if (n !== null) total[n].forEach((_, j, arr) => (arr[j] += g[j]));
        }
        next.h.forEach((_, j, arr) => (arr[j] += back.dh0[j]));
        if (next.c && back.dc0) next.c.forEach((_, j, arr) => (arr[j] += back.dc0![j]));
      }
      for (const g of Object.values(own.grads)) g.dispose();
      carry = next;
    }
    return total;
  };

  try {
    weightsAt.push(snapshot());
    const zero = new Float32Array(stateShape.reduce((x, y) => x * y, 1));
    states.set(0, { h: zero, c: lstm ? zero : null });
    const out: MisalignmentEntry[] = [];
    let next = 0;
    for (let i = 0; i + 1 < bounds.length; i++) {
      const a = bounds[i];
      const b = bounds[i + 1];
      restore(weightsAt[segmentOf(a)]);
      const f = model.forward(slice(inputs, a, b), stateOptions(states.get(a)!));
      states.set(b, { h: Float32Array.from(f.hT.data() as Float32Array), c: f.cT ? Float32Array.from(f.cT.data() as Float32Array) : null });
      for (const t of [f.states, f.logits, f.hT, f.cT]) t?.dispose();
      if (b !== updates[next]) continue;
      const n = next + 1;
      const start = Math.max(0, b - k2);
      const gTime = online(start, b);
      const gNow = recomputed(start, b, weightsAt[n - 1]);
      const counted = (() => {
        let c = 0;
        const y = targets.data() as Int32Array;
        for (let r = Math.max(start, b - k1) * B; r < b * B; r++) if (y[r] >= 0) c++;
        return c;
      })();
      const scale = counted > 0 ? 1 / counted : 1;
      let dd = 0;
      let aa = 0;
      let bb = 0;
      let ab = 0;
      for (const name of names) {
        const u = gTime[name];
        const v = gNow[name];
        for (let j = 0; j < u.length; j++) {
          dd += (u[j] - v[j]) ** 2;
          aa += u[j] ** 2;
          bb += v[j] ** 2;
          ab += u[j] * v[j];
        }
      }
      out.push({
        update: n,
        step: b,
        relativeError: bb === 0 ? (dd === 0 ? 0 : Infinity) : Math.sqrt(dd / bb),
        cosine: aa === 0 && bb === 0 ? 1 : aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb),
      });
      // SGD with the gradient online TBPTT has: g_time, mean over the counted targets.
      const prev = weightsAt[n - 1];
      weightsAt.push(names.map((name, i2) => Float32Array.from(prev[i2], (w, j) => w - lr * scale * gTime[name][j])));
      next++;
    }
    return out;
  } finally {
    model.setParams(original);
  }
}
