/**
 * The task heads against PyTorch itself: test/fixtures/torch-heads.json holds, for classify
 * (h_n and mean pooling, class weights with an ignored target) and regress (every valid step and
 * h_n, MSELoss and HuberLoss), the loss and every parameter's gradient of nn.RNN/LSTM/GRU +
 * nn.Linear over a packed variable-length batch, written by scripts/torch-head-fixtures.py in
 * float64. The float64 oracle must agree to the fixture's precision (the regression targets pass
 * through float32, as the API takes them), and the native model, loaded with the same tensors
 * under the same names, to float32 rounding. No torch is needed to run this.
 */
import * as fs from 'fs';
import * as path from 'path';
import { CellKind, RNN, Tensor, nativeAvailable } from '../lib';
import { checkModelCall, checkModelSpec, referenceModelLossAndGradients } from '../lib/engine/model';
import { relErr } from './helpers/oracle-checks';

interface TorchHeadCase {
  cell: CellKind;
  numLayers: number;
  bidirectional: boolean;
  inputSize: number;
  hiddenSize: number;
  outputSize: number;
  head: { kind: 'classify'; pool: 'last' | 'mean'; classWeights?: number[] } | { kind: 'regress'; positions: 'every' | 'last'; loss: 'mse' | 'huber'; delta?: number };
  steps: number;
  batch: number;
  lengths: number[];
  x: number[];
  targets: number[];
  params: Record<string, number[]>;
  loss: number;
  grads: Record<string, number[]>;
}

const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'torch-heads.json'), 'utf8')) as { cases: TorchHeadCase[] };
const name = (c: TorchHeadCase) => `${c.cell} L${c.numLayers}${c.bidirectional ? ' bi' : ''} ${JSON.stringify(c.head)}`;
const targetsOf = (c: TorchHeadCase) => (c.head.kind === 'classify' ? Int32Array.from(c.targets) : Float32Array.from(c.targets));
const modelOptions = (c: TorchHeadCase) => ({ cell: c.cell, inputSize: c.inputSize, hiddenSize: c.hiddenSize, outputSize: c.outputSize, numLayers: c.numLayers, bidirectional: c.bidirectional, head: c.head });

describe('task heads vs PyTorch fixtures', () => {
  test('the fixture covers every head form', () => {
    const forms = new Set(fixture.cases.map((c) => `${c.head.kind}:${c.head.kind === 'classify' ? c.head.pool : `${c.head.positions}:${c.head.loss}`}`));
    expect([...forms].sort()).toEqual(['classify:last', 'classify:mean', 'regress:every:huber', 'regress:every:mse', 'regress:last:huber', 'regress:last:mse']);
    expect(fixture.cases.some((c) => c.head.kind === 'classify' && c.head.classWeights && c.targets.includes(-1))).toBe(true);
  });

  test.each(fixture.cases.map((c) => [name(c), c] as const))('%s: the float64 oracle agrees with torch', (_n, c) => {
    const spec = checkModelSpec(modelOptions(c));
    const params = Object.fromEntries(Object.entries(c.params).map(([k, v]) => [k, Float64Array.from(v)]));
    const input = { kind: 'dense' as const, data: Float64Array.from(c.x) };
    const { batch } = checkModelCall(spec, { steps: c.steps, batch: c.batch, input, lengths: Int32Array.from(c.lengths) }, {}, true);
    const r = referenceModelLossAndGradients(spec, params, batch, targetsOf(c), { training: false, dropoutSeed: 0, truncate: null, reduction: 'mean', stateAt: null });
    // 12 significant digits in the fixture; float32 regression targets move the loss by ~1e-8.
    expect(Math.abs(r.loss - c.loss) / Math.abs(c.loss)).toBeLessThan(c.head.kind === 'classify' ? 1e-10 : 1e-7);
    const wrong = Object.keys(c.grads)
      .map((k) => [k, relErr(r.grads[k], c.grads[k])] as const)
      .filter(([, err]) => !(err < (c.head.kind === 'classify' ? 1e-9 : 1e-6)));
    expect(wrong).toEqual([]);
  });

  const native = nativeAvailable() ? test.each(fixture.cases.map((c) => [name(c), c] as const)) : test.skip.each([['(no addon)', fixture.cases[0]] as const]);
  native('%s: the native model loaded with the same tensors agrees with torch', (_n, c) => {
    const rnn = new RNN({ ...modelOptions(c), seed: 1 });
    expect(Object.keys(rnn.params).sort()).toEqual(Object.keys(c.params).sort()); // PyTorch's state_dict names
    for (const [k, v] of Object.entries(c.params)) (rnn.params[k].data() as Float32Array).set(v);
    const x = Tensor.from(Float32Array.from(c.x), [c.steps, c.batch, c.inputSize]);
    const y = Tensor.from(targetsOf(c), c.head.kind === 'classify' ? [c.batch] : c.head.positions === 'every' ? [c.steps, c.batch, c.outputSize] : [c.batch, c.outputSize]);
    const r = rnn.lossAndGradients(x, y, { lengths: Int32Array.from(c.lengths) });
    expect(Math.abs(r.loss - c.loss) / Math.abs(c.loss)).toBeLessThan(2e-6);
    const wrong = Object.keys(c.grads)
      .map((k) => [k, relErr(r.grads[k].toArray() as Float32Array, c.grads[k])] as const)
      .filter(([, err]) => !(err < 2e-5));
    expect(wrong).toEqual([]);
    rnn.dispose();
  });
});
