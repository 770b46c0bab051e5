/**
 * `new RNN({ cell, numLayers, bidirectional, dropout })`: the model API on the recurrent engine.
 * Both backends start from the same parameters and agree on losses, gradients and training steps;
 * a step that would not be finite changes nothing; checkpoints round-trip every configuration;
 * TBPTT carries an LSTM's c; sampling works for unidirectional models.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CellKind, NonFiniteError, Optimizer, RNN, Tensor, Trainer, loadCheckpoint, saveCheckpoint } from '../lib';
import { StreamBatcher } from '../lib/train/batcher';
import { expectCleanExit, runChild } from './helpers/child';
import { mulberry32, relErr } from './helpers/oracle-checks';

const D = 7;
const K = 5;

function data(T: number, B: number, seed: number) {
  const rng = mulberry32(seed);
  const inputs = Tensor.from(Int32Array.from({ length: T * B }, () => Math.floor(rng() * D)), [T, B]);
  const targets = Tensor.from(Int32Array.from({ length: T * B }, () => (rng() < 0.1 ? -1 : Math.floor(rng() * K))), [T, B]);
  return { inputs, targets };
}

function params(rnn: RNN): Record<string, Float32Array> {
  return Object.fromEntries(Object.entries(rnn.params).map(([k, t]) => [k, t.toArray() as Float32Array]));
}

const CONFIGS: { cell: CellKind; numLayers: number; bidirectional: boolean; dropout: number }[] = [
  { cell: 'lstm', numLayers: 2, bidirectional: false, dropout: 0 },
  { cell: 'gru', numLayers: 1, bidirectional: true, dropout: 0 },
  { cell: 'relu', numLayers: 1, bidirectional: false, dropout: 0 },
  { cell: 'tanh', numLayers: 3, bidirectional: true, dropout: 0.2 },
];

describe('RNN on the recurrent engine', () => {
  test.each(CONFIGS)('$cell L$numLayers bi=$bidirectional p=$dropout: native and reference agree through three Adam steps', (cfg) => {
    const opts = { inputSize: D, hiddenSize: 9, outputSize: K, seed: 42, ...cfg };
    const native = new RNN(opts);
    const reference = new RNN({ ...opts, backend: 'reference' });
    expect(Object.keys(native.params)).toEqual(Object.keys(reference.params));
    expect(Object.keys(native.params)[0]).toBe('rnn.weight_ih_l0');
    for (const [k, v] of Object.entries(params(native))) expect(reference.params[k].toArray()).toEqual(v);
    const { inputs, targets } = data(6, 3, 1);
    const g1 = native.lossAndGradients(inputs, targets, { dropoutSeed: 9 });
    const g2 = reference.lossAndGradients(inputs, targets, { dropoutSeed: 9 });
    expect(Math.abs(g1.loss - g2.loss)).toBeLessThan(1e-5);
    for (const k of Object.keys(g2.grads)) expect(relErr(g1.grads[k].toArray(), g2.grads[k].toArray())).toBeLessThan(1e-4);
    const adamN = new Optimizer(native, { kind: 'adam' });
    const adamR = new Optimizer(reference, { kind: 'adam' });
    for (let i = 0; i < 3; i++) {
      const a = native.trainStep(inputs, targets, { lr: 0.01, clipNorm: 1, optimizer: adamN, dropoutSeed: 100 + i });
      const b = reference.trainStep(inputs, targets, { lr: 0.01, clipNorm: 1, optimizer: adamR, dropoutSeed: 100 + i });
      expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-4);
      expect(Math.abs(a.gradNorm - b.gradNorm) / b.gradNorm).toBeLessThan(1e-4);
      expect(a.clipped).toBe(b.clipped);
    }
    const pn = params(native);
    for (const [k, v] of Object.entries(params(reference))) expect(relErr(pn[k], v)).toBeLessThan(1e-3);
    expect(adamN.step).toBe(3);
  });

  test.each(['native', 'reference'] as const)('%s: a step that would not be finite changes nothing', (backend) => {
    const rnn = new RNN({ inputSize: D, hiddenSize: 6, outputSize: K, seed: 3, cell: 'lstm', numLayers: 2, backend });
    // RMSProp moves each parameter by about lr / sqrt(1 - rho) = 3.2 lr: 2e38 overflows float32.
    const sgd = new Optimizer(rnn, { kind: 'rmsprop' });
    const { inputs, targets } = data(5, 2, 2);
    rnn.trainStep(inputs, targets, { lr: 0.1, optimizer: sgd });
    const before = params(rnn);
    const state = sgd.state();
    expect(() => rnn.trainStep(inputs, targets, { lr: 2e38, optimizer: sgd })).toThrow(NonFiniteError);
    const after = params(rnn);
    for (const k of Object.keys(before)) expect(Buffer.from(after[k].buffer).equals(Buffer.from(before[k].buffer))).toBe(true);
    const stateAfter = sgd.state();
    for (const k of Object.keys(state)) expect(Buffer.from(stateAfter[k].buffer).equals(Buffer.from(state[k].buffer))).toBe(true);
    expect(sgd.step).toBe(1);
  });

  test('async forward, lossAndGradients and trainStep equal the synchronous calls bit for bit', async () => {
    const opts = { inputSize: D, hiddenSize: 9, outputSize: K, seed: 13, cell: 'lstm' as const, numLayers: 2 };
    const a = new RNN(opts);
    const b = new RNN(opts);
    const { inputs, targets } = data(6, 3, 7);
    expect((await a.forwardAsync(inputs)).logits.toArray()).toEqual(b.forward(inputs).logits.toArray());
    const ga = await a.lossAndGradientsAsync(inputs, targets, { stateAt: 2 });
    const gb = b.lossAndGradients(inputs, targets, { stateAt: 2 });
    expect(ga.loss).toBe(gb.loss);
    for (const k of Object.keys(gb.grads)) expect(ga.grads[k].toArray()).toEqual(gb.grads[k].toArray());
    expect(ga.cAt!.toArray()).toEqual(gb.cAt!.toArray());
    const oa = new Optimizer(a, { kind: 'adam' });
    const ob = new Optimizer(b, { kind: 'adam' });
    const sa = await a.trainStepAsync(inputs, targets, { lr: 0.01, optimizer: oa });
    const sb = b.trainStep(inputs, targets, { lr: 0.01, optimizer: ob });
    expect(sa.loss).toBe(sb.loss);
    expect(sa.gradNorm).toBe(sb.gradNorm);
    expect(params(a)).toEqual(params(b));
    expect(oa.state()).toEqual(ob.state());
  });

  test('lengths: padding steps count for nothing, whatever their targets', () => {
    const rnn = new RNN({ inputSize: D, hiddenSize: 5, outputSize: K, seed: 8, cell: 'gru', bidirectional: true });
    const { inputs, targets } = data(6, 3, 4);
    const lengths = Int32Array.of(6, 2, 4);
    const a = rnn.lossAndGradients(inputs, targets, { lengths });
    const changed = targets.toArray() as Int32Array;
    changed[5 * 3 + 1] = (changed[5 * 3 + 1] + 1) % K; // step 5 of sequence 1 (length 2): padding
    const b = rnn.lossAndGradients(inputs, Tensor.from(changed, [6, 3]), { lengths });
    expect(b.loss).toBe(a.loss);
  });

  test('the default model refuses what only the engine models have', () => {
    const rnn = new RNN({ inputSize: D, hiddenSize: 4, outputSize: K, seed: 1 });
    expect(Object.keys(rnn.params)).toEqual(['U', 'W', 'b', 'V', 'c']);
    const { inputs, targets } = data(3, 2, 5);
    expect(() => rnn.lossAndGradients(inputs, targets, { c0: Tensor.zeros([2, 4]) })).toThrow(/cell state/);
    expect(() => rnn.forward(inputs, { lengths: Int32Array.of(1, 2) })).toThrow(/variable lengths/);
  });

  test('dispose frees the model at once; isDisposed and Symbol.dispose', () => {
    const rnn = new RNN({ inputSize: D, hiddenSize: 4, outputSize: K, seed: 1, cell: 'lstm' });
    expect(rnn.isDisposed).toBe(false);
    rnn[Symbol.dispose]();
    expect(rnn.isDisposed).toBe(true);
    expect(Object.values(rnn.params).every((t) => t.isDisposed)).toBe(true);
    rnn.dispose();
  });

  test('sampling carries an LSTM state; a bidirectional model cannot sample', () => {
    const lstm = new RNN({ inputSize: D, hiddenSize: 6, outputSize: D, seed: 5, cell: 'lstm', numLayers: 2 });
    const a = lstm.sample({ length: 20, seed: 1 }) as Int32Array;
    const b = lstm.sample({ length: 20, seed: 1 }) as Int32Array;
    expect(Array.from(a)).toEqual(Array.from(b));
    const bi = new RNN({ inputSize: D, hiddenSize: 6, outputSize: D, seed: 5, cell: 'gru', bidirectional: true });
    expect(() => bi.sample({ length: 3 })).toThrow(/bidirectional/);
  });

  test.each(CONFIGS)('checkpoint round trip: $cell L$numLayers bi=$bidirectional', (cfg) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-model-'));
    const rnn = new RNN({ inputSize: D, hiddenSize: 6, outputSize: K, seed: 11, ...cfg });
    const adam = new Optimizer(rnn, { kind: 'adam' });
    const { inputs, targets } = data(5, 2, 6);
    rnn.trainStep(inputs, targets, { lr: 0.01, optimizer: adam });
    const file = path.join(dir, 'm.safetensors');
    saveCheckpoint(file, rnn, { optimizer: adam });
    const ck = loadCheckpoint(file);
    expect(ck.rnn.cell).toBe(cfg.cell);
    expect(ck.rnn.numLayers).toBe(cfg.numLayers);
    expect(ck.rnn.bidirectional).toBe(cfg.bidirectional);
    expect(ck.rnn.dropout).toBeCloseTo(cfg.dropout);
    for (const [k, v] of Object.entries(params(rnn))) expect(ck.rnn.params[k].toArray()).toEqual(v);
    expect(ck.optimizer!.state()).toEqual(adam.state());
    const x = rnn.forward(inputs).logits.toArray();
    expect(ck.rnn.forward(inputs).logits.toArray()).toEqual(x);
    // Both continue identically.
    const s1 = rnn.trainStep(inputs, targets, { lr: 0.01, optimizer: adam, dropoutSeed: 5 });
    const s2 = ck.rnn.trainStep(inputs, targets, { lr: 0.01, optimizer: ck.optimizer!, dropoutSeed: 5 });
    expect(s2.loss).toBe(s1.loss);
    fs.rmSync(dir, { recursive: true });
  });

  test('TBPTT trains a 2-layer LSTM carrying h and c, and resumes bit-identically from a checkpoint', async () => {
    const text = Int32Array.from({ length: 400 }, (_, i) => (i * 7 + (i >> 3)) % D);
    const make = () => new RNN({ inputSize: D, hiddenSize: 8, outputSize: D, seed: 21, cell: 'lstm', numLayers: 2 });
    const run = async (rnn: RNN, steps: number, resumeFrom?: string) => {
      const trainer = new Trainer(rnn, { k1: 6, k2: 9, clipNorm: 5, optimizer: 'adam', lr: 0.01 });
      const batcher = new StreamBatcher(text, 3);
      if (resumeFrom) {
        const ck = loadCheckpoint(resumeFrom);
        rnn.setParams(params(ck.rnn));
        trainer.optimizer.loadState(ck.optimizer!.state(), ck.optimizer!.step);
        trainer.loadState(ck.training!, batcher);
        ck.rnn.dispose();
      }
      await trainer.fit(batcher, { steps });
      return trainer;
    };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-tbptt-'));
    const full = make();
    await run(full, 8);
    const first = make();
    const t1 = await run(first, 4);
    expect(t1.state().c).not.toBeNull();
    const file = path.join(dir, 'half.safetensors');
    saveCheckpoint(file, first, { trainer: t1 });
    const resumed = make();
    await run(resumed, 4, file);
    const a = params(full);
    const b = params(resumed);
    for (const k of Object.keys(a)) expect(Buffer.from(b[k].buffer).equals(Buffer.from(a[k].buffer))).toBe(true);
    fs.rmSync(dir, { recursive: true });
  });
});

describe('predict keeps nothing for backward', () => {
  test('an LSTM predict grows RSS by about its outputs, not by a training record', () => {
    // T = 100, B = 64, H = 512: the top layer's outputs are 13 MB. A forward pass for backward
    // also keeps the gates (52 MB), the cell states (13 MB) and a copy of the inputs (1.6 MB).
    const r = runChild(
      `
      const { RNN, Tensor } = require(REPO + '/lib');
      const rss = () => process.memoryUsage().rss;
      const T = 100, B = 64, H = 512;
      const x = Tensor.from(new Float32Array(T * B * 64).fill(0.1), [T, B, 64]);
      const rnn = new RNN({ inputSize: 64, hiddenSize: H, outputSize: 16, seed: 1, cell: 'lstm' });
      const before = rss();
      const p = rnn.predict(x);
      const grown = rss() - before;
      console.log(JSON.stringify({ grown: Math.round(grown / 2 ** 20), finite: p.toArray().every(Number.isFinite) }));
    `,
      { timeoutMs: 120_000 },
    );
    expectCleanExit(r);
    const { grown, finite } = JSON.parse(r.stdout);
    expect(finite).toBe(true);
    expect(grown).toBeGreaterThan(8);
    expect(grown).toBeLessThan(40);
  });
});

describe('RNN.dispose frees native memory at once', () => {
  test.each(['lstm', 'tanh'])('%s: the scratch of a large step goes back to the OS on dispose, without a GC', (cell) => {
    const r = runChild(
      `
      const { RNN, Tensor } = require(REPO + '/lib');
      const rss = () => process.memoryUsage().rss;
      const T = 100, B = 64, H = 768;
      const x = Tensor.from(new Float32Array(T * B * 64).fill(0.1), [T, B, 64]);
      const y = Tensor.from(new Int32Array(T * B).fill(1), [T, B]);
      const rnn = new RNN({ inputSize: 64, hiddenSize: H, outputSize: 16, seed: 1, cell: '${cell}' });
      const before = rss();
      rnn.trainStep(x, y, { lr: 0.01 }).hT.dispose();
      const grown = rss() - before;
      rnn.dispose();
      const left = rss() - before;
      console.log(JSON.stringify({ grown: Math.round(grown / 2 ** 20), left: Math.round(left / 2 ** 20) }));
    `,
      { timeoutMs: 120_000 },
    );
    expectCleanExit(r);
    const { grown, left } = JSON.parse(r.stdout);
    // The step's record and scratch are 20 MiB and more (without release() nearly all of it
    // stays); RSS also moves by a few MiB for reasons of its own, so the bound is a third.
    expect(grown).toBeGreaterThan(16);
    expect(left).toBeLessThan(grown / 3);
  });
});
