import { DTypeError, DisposedError, NonFiniteError, Optimizer, RNN, ShapeError, Tensor, TensorInUseError, isa, numThreads, setIsa, setNumThreads, supportedIsas } from '../lib';
import { NativeRequest, createEngine, nativeArgs, nativeRequest } from '../lib/backends/native';

const dims = { inputSize: 5, hiddenSize: 7, outputSize: 4 };

function tokens(T: number, B: number, n: number, seed = 1): Tensor {
  const data = new Int32Array(T * B);
  let x = seed;
  for (let i = 0; i < data.length; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    data[i] = x % n;
  }
  return Tensor.from(data, [T, B]);
}

function snapshot(rnn: RNN): Float32Array[] {
  return Object.values(rnn.params).map((t) => t.toArray() as Float32Array);
}

describe('RNN construction and parameters', () => {
  test('initialisation is uniform in +-1/sqrt(H), deterministic from the seed, identical on both backends', () => {
    const a = new RNN({ ...dims, seed: 3 });
    const b = new RNN({ ...dims, seed: 3, backend: 'reference' });
    const c = new RNN({ ...dims, seed: 4 });
    expect(snapshot(a)).toEqual(snapshot(b));
    expect(snapshot(a)).not.toEqual(snapshot(c));
    const bound = 1 / Math.sqrt(dims.hiddenSize);
    for (const p of snapshot(a)) for (const v of p) expect(Math.abs(v)).toBeLessThanOrEqual(bound);
    expect(a.params.U.shape).toEqual([7, 5]);
    expect(a.params.W.shape).toEqual([7, 7]);
    expect(a.params.b.shape).toEqual([7]);
    expect(a.params.V.shape).toEqual([4, 7]);
    expect(a.params.c.shape).toEqual([4]);
  });

  test('constructor rejects bad sizes and backends', () => {
    expect(() => new RNN({ ...dims, hiddenSize: 0 })).toThrow(RangeError);
    expect(() => new RNN({ ...dims, inputSize: 2.5 })).toThrow(RangeError);
    expect(() => new RNN({ ...dims, outputSize: -3 })).toThrow(RangeError);
    expect(() => new RNN({ ...dims, hiddenSize: 70000 })).toThrow(RangeError);
    expect(() => new RNN({ ...dims, backend: 'gpu' as 'native' })).toThrow(TypeError);
    expect(() => new RNN({ ...dims, seed: 0.5 })).toThrow(RangeError);
  });

  test('setParams validates everything before changing anything', () => {
    const rnn = new RNN({ ...dims, seed: 1 });
    const before = snapshot(rnn);
    const good = { U: new Float32Array(35).fill(0.1), W: new Float32Array(49), b: new Float32Array(7), V: new Float32Array(28), c: new Float32Array(4) };
    expect(() => rnn.setParams({ ...good, c: new Float32Array(5) })).toThrow(ShapeError);
    expect(() => rnn.setParams({ ...good, V: new Float64Array(28) as unknown as Float32Array })).toThrow(DTypeError);
    const nan = new Float32Array(4);
    nan[2] = NaN;
    expect(() => rnn.setParams({ ...good, c: nan })).toThrow(NonFiniteError);
    expect(() => rnn.setParams({ ...good, W: Tensor.zeros([7, 6]) })).toThrow(ShapeError);
    expect(snapshot(rnn)).toEqual(before);
    rnn.setParams({ ...good, W: Tensor.from(new Float32Array(49).fill(0.5), [7, 7]) });
    expect(rnn.params.U.toArray()[0]).toBeCloseTo(0.1);
    expect(rnn.params.W.toArray()[48]).toBe(0.5);
  });
});

describe('RNN calls reject bad input with typed errors and change nothing', () => {
  const rnn = new RNN({ ...dims, seed: 2 });
  const x = tokens(3, 2, 5);
  const y = tokens(3, 2, 4, 9);
  const cases: [string, () => unknown, new (...args: never[]) => Error][] = [
    ['inputs not a tensor', () => rnn.forward(new Int32Array(6) as unknown as Tensor), TypeError],
    ['token ids out of range', () => rnn.forward(Tensor.from(new Int32Array([0, 5, 1, 1, 1, 1]), [3, 2])), RangeError],
    ['negative token id', () => rnn.forward(Tensor.from(new Int32Array([0, -1, 1, 1, 1, 1]), [3, 2])), RangeError],
    ['1-D token inputs', () => rnn.forward(Tensor.from(new Int32Array(6), [6])), ShapeError],
    ['dense inputs with the wrong D', () => rnn.forward(Tensor.zeros([3, 2, 4])), ShapeError],
    ['dense inputs with NaN', () => rnn.forward(Tensor.from(new Float32Array(30).fill(NaN), [3, 2, 5])), NonFiniteError],
    ['dense inputs with Infinity', () => rnn.forward(Tensor.from(new Float32Array(30).fill(Infinity), [3, 2, 5])), NonFiniteError],
    ['T = 0', () => rnn.forward(Tensor.zeros([0, 2], 'int32')), RangeError],
    ['h0 of the wrong shape', () => rnn.forward(x, { h0: Tensor.zeros([2, 6]) }), ShapeError],
    ['h0 int32', () => rnn.forward(x, { h0: Tensor.zeros([2, 7], 'int32') }), DTypeError],
    ['h0 with NaN', () => rnn.forward(x, { h0: Tensor.from(new Float32Array(14).fill(NaN), [2, 7]) }), NonFiniteError],
    ['targets out of range', () => rnn.lossAndGradients(x, Tensor.from(new Int32Array([0, 4, 0, 0, 0, 0]), [3, 2])), RangeError],
    ['targets below -1', () => rnn.lossAndGradients(x, Tensor.from(new Int32Array([0, -2, 0, 0, 0, 0]), [3, 2])), RangeError],
    ['targets float32', () => rnn.lossAndGradients(x, Tensor.zeros([3, 2])), DTypeError],
    ['targets of another shape', () => rnn.lossAndGradients(x, Tensor.zeros([2, 3], 'int32')), ShapeError],
    ['truncate 0', () => rnn.lossAndGradients(x, y, { truncate: 0 }), RangeError],
    ['truncate 1.5', () => rnn.lossAndGradients(x, y, { truncate: 1.5 }), RangeError],
    ['bad reduction', () => rnn.lossAndGradients(x, y, { reduction: 'max' as 'sum' }), TypeError],
    ['lr NaN', () => rnn.trainStep(x, y, { lr: NaN }), RangeError],
    ['lr negative', () => rnn.trainStep(x, y, { lr: -1 }), RangeError],
    ['clipNorm 0', () => rnn.trainStep(x, y, { lr: 0.1, clipNorm: 0 }), RangeError],
    ['clipValue Infinity', () => rnn.trainStep(x, y, { lr: 0.1, clipValue: Infinity }), RangeError],
    ['optimizer from another model', () => rnn.trainStep(x, y, { lr: 0.1, optimizer: new Optimizer(new RNN({ ...dims, hiddenSize: 3 }), { kind: 'adam' }) }), ShapeError],
  ];
  test.each(cases)('%s', (_name, call, errorType) => {
    const before = snapshot(rnn);
    expect(call).toThrow(errorType);
    expect(snapshot(rnn)).toEqual(before);
  });

  test('disposed inputs throw DisposedError', () => {
    const t = tokens(3, 2, 5);
    t.dispose();
    expect(() => rnn.forward(t)).toThrow(DisposedError);
    const target = tokens(3, 2, 4);
    target.dispose();
    expect(() => rnn.lossAndGradients(x, target)).toThrow(DisposedError);
  });

  test('a non-finite loss leaves parameters and optimizer state untouched', () => {
    const m = new RNN({ ...dims, seed: 5 });
    const opt = new Optimizer(m, { kind: 'adam' });
    m.trainStep(x, y, { lr: 0.01, optimizer: opt });
    // s_t = tanh(20) = 1 exactly, so z_0 = 7 * 1e38 overflows float32 and the loss is NaN.
    const V = new Float32Array(28);
    V.fill(1e38, 0, 7);
    m.setParams({ U: new Float32Array(35), W: new Float32Array(49), b: new Float32Array(7).fill(20), V, c: new Float32Array(4) });
    const before = snapshot(m);
    const stateBefore = opt.state();
    expect(() => m.trainStep(x, y, { lr: 0.01, optimizer: opt })).toThrow(NonFiniteError);
    expect(snapshot(m)).toEqual(before);
    expect(opt.state()).toEqual(stateBefore);
    expect(opt.step).toBe(1);
  });

  test.each(supportedIsas())('an exploding but finite gradient is measured and clipped, not refused (%s)', (name) => {
    // Rows of V of (k + 1) * 1e19 make dL/ds = V[argmax] - V[target] ~ 1e19..3e19: every gradient
    // element is finite in float32, its square is not.
    const V = Float32Array.from({ length: 28 }, (_, i) => (Math.floor(i / 7) + 1) * 1e19);
    const values = { U: new Float32Array(35), W: new Float32Array(49), b: new Float32Array(7).fill(0.5), V, c: new Float32Array(4) };
    const reference = new RNN({ ...dims, backend: 'reference' });
    reference.setParams(values);
    const expected = reference.trainStep(x, y, { lr: 0.01, clipNorm: 1 });
    const previous = isa();
    setIsa(name as 'scalar');
    try {
      const m = new RNN({ ...dims });
      m.setParams(values);
      const r = m.trainStep(x, y, { lr: 0.01, clipNorm: 1 });
      expect(r.gradNorm).toBeGreaterThan(1e19);
      expect(Math.abs(r.gradNorm / expected.gradNorm - 1)).toBeLessThan(1e-4);
      expect(r.clipped).toBe(true);
      // One SGD step of a gradient rescaled to norm 1 moves the parameters by at most lr.
      let moved = 0;
      const after = snapshot(m);
      ['U', 'W', 'b', 'V', 'c'].forEach((k, i) => after[i].forEach((v, j) => (moved += (v - values[k as keyof typeof values][j]) ** 2)));
      expect(Math.sqrt(moved)).toBeLessThanOrEqual(0.01 * 1.0001);
    } finally {
      setIsa(previous as 'scalar');
    }
  });
});

describe('thread counts', () => {
  // B = 17 splits the recurrences into batch slices of whole register tiles on every ISA (mr = 4,
  // 6, 8), one of them ending in a single row; T*B*H*H is above the native parallel thresholds.
  // B = 35 makes the batch two shards (16 + 19 rows with 8-row tiles), run side by side on 2 and 3
  // threads and one after the other, with every thread inside each, on 1 and 4; dense inputs are
  // read in place by each shard.
  const big = { inputSize: 11, hiddenSize: 64, outputSize: 13 };
  const T = 24;

  function run(name: string, threads: number, B: number, dense: boolean, truncate?: number): string[] {
    const previousIsa = isa();
    const previousThreads = numThreads();
    setIsa(name as 'scalar');
    setNumThreads(threads);
    try {
      const m = new RNN({ ...big, seed: 5 });
      const h0 = Tensor.randn([B, big.hiddenSize], { seed: 2 });
      const inputs = (seed: number) => (dense ? Tensor.randn([T, B, big.inputSize], { seed }) : tokens(T, B, big.inputSize, seed));
      const r = m.lossAndGradients(inputs(3), tokens(T, B, big.outputSize, 4), { h0, truncate });
      const step = m.trainStep(inputs(5), tokens(T, B, big.outputSize, 6), { lr: 0.1, clipNorm: 1, h0 });
      const hex = (t: Tensor) => Buffer.from((t.toArray() as Float32Array).buffer).toString('hex');
      return [String(r.loss), ...Object.values(r.grads).map(hex), hex(r.hT), String(step.loss), String(step.gradNorm), hex(step.hT), ...Object.values(m.params).map(hex)];
    } finally {
      setNumThreads(previousThreads);
      setIsa(previousIsa as 'scalar');
    }
  }

  test.each(supportedIsas())('give bitwise identical losses, gradients, states and updates on 1, 2 and 3 threads (%s)', (name) => {
    for (const truncate of [undefined, 5]) {
      const one = run(name, 1, 17, false, truncate);
      expect(run(name, 2, 17, false, truncate)).toEqual(one);
      expect(run(name, 3, 17, false, truncate)).toEqual(one);
    }
  });

  test.each(supportedIsas())('batch shards: bitwise identical on 1 to 4 threads, token and dense inputs (%s)', (name) => {
    for (const dense of [false, true]) {
      for (const truncate of [undefined, 5]) {
        const one = run(name, 1, 35, dense, truncate);
        for (const threads of [2, 3, 4]) expect(run(name, threads, 35, dense, truncate)).toEqual(one);
      }
    }
  });
});

describe('the addon, called directly', () => {
  // The TS layer validates first; the addon validates again, so a malformed direct call ends in a
  // JS exception, never in a crash.
  const f = (n: number) => new Float32Array(n).fill(0.1);
  const request = (): NativeRequest =>
    nativeRequest({ inputSize: 2, hiddenSize: 1, outputSize: 2 }, { U: f(2), W: f(1), b: f(1), V: f(2), c: f(2) }, { steps: 1, batch: 1, input: { kind: 'tokens', data: new Int32Array([1]) } }, null, f(1), {
      targets: new Int32Array([1]),
      truncate: 0,
      reduction: 'mean',
      optimizer: { kind: 'sgd', lr: 0.1 },
      out: new Float64Array(3),
    });

  test('runs a well-formed request and refuses malformed ones with messages', () => {
    const engine = createEngine();
    const ok = request();
    engine.trainStep(...nativeArgs(ok));
    expect(ok.out![0]).toBeCloseTo(Math.log(2), 6);
    const cases: [string, (r: NativeRequest) => void, RegExp][] = [
      ['lr not given', (r) => (r.optimizer = { kind: 'sgd', lr: NaN }), /lr must be given/],
      ['fractional truncate', (r) => (r.truncate = 2.5), /truncate must be an integer/],
      ['float targets', (r) => (r.targets = new Float32Array(1) as unknown as Int32Array), /targets must be an Int32Array/],
      ['short U', (r) => (r.U = f(1)), /U must have 2 elements/],
      ['token out of range', (r) => (r.tokens = new Int32Array([2])), /tokens\[0\] = 2 is outside/],
      ['unknown optimizer', (r) => (r.optimizer = { kind: 'lion', lr: 0.1 }), /optimizer kind/],
      ['NaN parameter', (r) => (r.W = new Float32Array([NaN])), /W contains NaN/],
    ];
    for (const [, change, message] of cases) {
      const r = request();
      change(r);
      expect(() => engine.trainStep(...nativeArgs(r))).toThrow(message);
    }
    expect(() => engine.trainStep(1, 2, 3)).toThrow(/expected 32 arguments/);
  });

  test('an asynchronous job indexes with the ids it checked, whatever the caller writes meanwhile', async () => {
    const T = 64, B = 16, V = 65;
    const ids = (seed: number) => tokens(T, B, V, seed).toArray() as Int32Array;
    const run = async (spoil: boolean) => {
      const r = nativeRequest({ inputSize: V, hiddenSize: 64, outputSize: V }, { U: f(64 * V), W: f(64 * 64), b: f(64), V: f(V * 64), c: f(V) }, { steps: T, batch: B, input: { kind: 'tokens', data: ids(1) } }, null, f(B * 64), {
        targets: ids(2),
        truncate: 0,
        reduction: 'mean',
        gU: f(64 * V), gW: f(64 * 64), gb: f(64), gV: f(V * 64), gc: f(V),
      });
      const pending = createEngine().gradientsAsync(...nativeArgs(r));
      // Out-of-range ids written while the job may be running: read by the kernels, they would
      // index far outside U and the logits.
      if (spoil) {
        r.tokens!.fill(1 << 30);
        r.targets!.fill(-(1 << 30));
      }
      return { loss: (await pending) as number, gU: r.gU! };
    };
    const clean = await run(false);
    const spoiled = await run(true);
    expect(spoiled.loss).toBe(clean.loss);
    expect(spoiled.gU).toEqual(clean.gU);
  });
});

describe('asynchronous calls', () => {
  test('trainStepAsync matches trainStep and pins its tensors meanwhile', async () => {
    const a = new RNN({ inputSize: 65, hiddenSize: 128, outputSize: 65, seed: 11 });
    const b = new RNN({ inputSize: 65, hiddenSize: 128, outputSize: 65, seed: 11 });
    const x = tokens(64, 16, 65, 3);
    const y = tokens(64, 16, 65, 4);
    const optA = new Optimizer(a, { kind: 'adam' });
    const optB = new Optimizer(b, { kind: 'adam' });
    const pending = a.trainStepAsync(x, y, { lr: 0.01, clipNorm: 1, optimizer: optA });
    expect(() => a.params.W.dispose()).toThrow(TensorInUseError);
    expect(() => x.dispose()).toThrow(TensorInUseError);
    expect(() => a.setParams({ U: new Float32Array(128 * 65), W: new Float32Array(128 * 128), b: new Float32Array(128), V: new Float32Array(65 * 128), c: new Float32Array(65) })).toThrow(TensorInUseError);
    expect(() => a.trainStep(x, y, { lr: 0.01 })).toThrow(TensorInUseError);
    const r = await pending;
    const s = b.trainStep(x, y, { lr: 0.01, clipNorm: 1, optimizer: optB });
    expect(r.loss).toBe(s.loss);
    expect(r.gradNorm).toBe(s.gradNorm);
    expect(r.clipped).toBe(s.clipped);
    expect(snapshot(a)).toEqual(snapshot(b));
    expect(optA.state()).toEqual(optB.state());
    x.dispose();
    a.params.W.dispose();
    expect(() => a.forward(y)).toThrow(DisposedError);
  });

  test('forwardAsync and lossAndGradientsAsync match the sync calls', async () => {
    const rnn = new RNN({ ...dims, seed: 8 });
    const x = tokens(6, 3, 5);
    const y = tokens(6, 3, 4, 2);
    const f = await rnn.forwardAsync(x);
    expect(f.logits.toArray()).toEqual(rnn.forward(x).logits.toArray());
    const g = await rnn.lossAndGradientsAsync(x, y, { truncate: 2 });
    const s = rnn.lossAndGradients(x, y, { truncate: 2 });
    expect(g.loss).toBe(s.loss);
    expect(g.grads.W.toArray()).toEqual(s.grads.W.toArray());
  });
});
