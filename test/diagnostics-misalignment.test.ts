/**
 * Misalignment in online TBPTT(k1, k2) (lib/diagnostics/misalignment.ts): zero when every window
 * lies in one weight version (k2 <= k1) or the weights never change (lr = 0: the piecewise
 * online gradient, with the state gradient carried between pieces, equals one backward pass over
 * the window), positive once windows span updates; the model is left as it was; typed errors.
 */
import { CellKind, RNN, Tensor, diagnose, tbpttMisalignment } from '../lib';
import { mulberry32 } from './helpers/oracle-checks';

const CELLS: CellKind[] = ['tanh', 'relu', 'lstm', 'gru'];

function stream(seed: number, N: number, B: number, V: number): [Tensor, Tensor] {
  const rng = mulberry32(seed);
  const draw = () => Tensor.from(Int32Array.from({ length: N * B }, () => Math.floor(rng() * V)), [N, B]);
  return [draw(), draw()];
}

describe.each(CELLS)('%s', (cell) => {
  test.each(['native', 'reference'] as const)('%s: 0 for k2 <= k1 and for lr = 0; positive once windows span updates; the model unchanged', (backend) => {
    const rnn = new RNN({ inputSize: 5, hiddenSize: 6, outputSize: 5, cell, numLayers: cell === 'gru' ? 2 : 1, seed: 4, backend });
    const [x, y] = stream(CELLS.indexOf(cell) + 1, 21, 2, 5);
    const before = Object.fromEntries(Object.entries(rnn.params).map(([n, t]) => [n, Float32Array.from(t.data() as Float32Array)]));
    const aligned = tbpttMisalignment(rnn, x, y, { k1: 5, k2: 3, lr: 2 });
    expect(aligned.map((e) => e.step)).toEqual([5, 10, 15, 20]);
    for (const e of aligned) {
      expect(e.relativeError).toBe(0);
      expect(e.cosine).toBeCloseTo(1, 12);
    }
    for (const e of tbpttMisalignment(rnn, x, y, { k1: 3, k2: 8, lr: 0 })) expect(e.relativeError).toBeLessThan(1e-6);
    const late = tbpttMisalignment(rnn, x, y, { k1: 3, k2: 8, lr: 0.5 });
    expect(late).toHaveLength(7);
    expect(late[0].relativeError).toBeLessThan(1e-6); // the first window has one weight version
    expect(late[6].relativeError).toBeGreaterThan(1e-4);
    expect(late[6].cosine).toBeLessThan(1);
    for (const [n, t] of Object.entries(rnn.params)) expect(t.data()).toEqual(before[n]);
  });
});

test('the legacy tanh model, through diagnose; typed errors', () => {
  const rnn = new RNN({ inputSize: 4, hiddenSize: 5, outputSize: 4, seed: 9 });
  const [x, y] = stream(50, 12, 3, 4);
  const d = diagnose(rnn, x, y, { misalignment: { k1: 2, k2: 6, lr: 1 }, truncate: [] });
  expect(d.misalignment).toHaveLength(6);
  expect(d.misalignment![5].relativeError).toBeGreaterThan(0);
  expect(diagnose(rnn, x, y, { truncate: [] }).misalignment).toBeNull();
  expect(() => tbpttMisalignment(rnn, x, y, { k1: 0, k2: 2, lr: 1 })).toThrow(RangeError);
  expect(() => tbpttMisalignment(rnn, x, y, { k1: 1, k2: 2, lr: -1 })).toThrow(RangeError);
  expect(() => tbpttMisalignment(rnn, x, y, null as unknown as { k1: number; k2: number; lr: number })).toThrow(TypeError);
  const bi = new RNN({ inputSize: 4, hiddenSize: 5, outputSize: 4, bidirectional: true, seed: 9 });
  expect(() => tbpttMisalignment(bi, x, y, { k1: 1, k2: 2, lr: 1 })).toThrow(TypeError);
  expect(() => diagnose(rnn, x, y, { misalignment: 3 as unknown as { k1: number; k2: number; lr: number } })).toThrow(TypeError);
});
