/**
 * Issue 13, native tanh: on every ISA it reaches exactly +-1 wherever float32 tanh rounds to +-1
 * (AVX2 and AVX-512 stopped at 0.99999994, so gradients through saturated units depended on the
 * ISA), and NaN stays NaN.
 */
import { RNN, Tensor, backends, setIsa, supportedIsas } from '../lib';
import { addon } from '../lib/native';

const native = addon();
const isas: string[] = supportedIsas();

describe.each(isas)('tanh saturation (%s)', (isa) => {
  beforeAll(() => setIsa(isa as 'scalar'));
  afterAll(() => setIsa('auto'));

  test('equals float32-rounded tanh on every float in [8.99, 9.05], and is exactly +-1 beyond (it stopped at 0.99999994)', () => {
    const xs: number[] = [];
    const f = new Float32Array(1), u = new Uint32Array(f.buffer);
    f[0] = 8.99;
    const first = u[0];
    f[0] = 9.05;
    for (let b = first; b <= u[0]; b++) {
      const word = new Uint32Array([b]);
      const x = new Float32Array(word.buffer)[0];
      xs.push(x, -x);
    }
    xs.push(9.5, 10, 10.5, 20, 88, 1e10, 1e30, 3.4e38, Infinity, -20, -1e30, -Infinity);
    const x = Float32Array.from(xs);
    const y = Float32Array.from(x);
    native._tanh(y);
    let wrong = '';
    for (let i = 0; i < x.length && !wrong; i++) {
      if (y[i] !== Math.fround(Math.tanh(x[i]))) wrong = `tanh(${x[i]}) = ${y[i]}, want ${Math.fround(Math.tanh(x[i]))}`;
    }
    expect(wrong).toBe('');
  });

  test('NaN stays NaN (it became +-0.99999994 on AVX)', () => {
    const y = Float32Array.from([NaN, 1, NaN]);
    native._tanh(y);
    expect([Number.isNaN(y[0]), y[1], Number.isNaN(y[2])]).toEqual([true, Math.fround(Math.tanh(1)), true]);
  });

  test('gradients through saturated units are exactly 0, as in float64 (they were 4.4e22)', () => {
    const dims = { inputSize: 3, hiddenSize: 16, outputSize: 4 };
    const rnn = new RNN({ ...dims, seed: 5 });
    const Tn = 5, Bn = 2;
    const x = Float32Array.from({ length: Tn * Bn * 3 }, (_, i) => (i % 2 ? 1e30 : -1e30));
    const y = Int32Array.from({ length: Tn * Bn }, (_, i) => i % 4);
    const { grads } = rnn.lossAndGradients(Tensor.from(x, [Tn, Bn, 3]), Tensor.from(y, [Tn, Bn]));
    const params = Object.fromEntries(Object.entries(rnn.params).map(([n, t]) => [n, t.toArray()]));
    const reference = backends.reference.lossAndGradients(dims, params as never, { steps: Tn, batch: Bn, input: { kind: 'dense', data: x } }, y);
    for (const name of ['U', 'W', 'b', 'h0'] as const) {
      expect(Array.from(reference.grads[name]).every((g) => g === 0)).toBe(true);
      expect(Array.from(grads[name].toArray()).filter((g) => g !== 0)).toEqual([]);
    }
  });
});
