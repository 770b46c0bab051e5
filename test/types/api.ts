// Type test of the installed package's declarations: test/install/run.sh compiles it with
// `tsc --noEmit` in a project that installed the packed tarball. It pins the public API's
// signatures, and each `@ts-expect-error` line is a wrong call that must not compile (tsc fails
// on an unused directive, so a declaration that accepts it fails this test).
import {
  BpttError,
  NativeUnavailableError,
  Optimizer,
  RNN,
  ShapeError,
  Tensor,
  backends,
  isa,
  loadCheckpoint,
  nativeAvailable,
  numThreads,
  saveCheckpoint,
  setIsa,
  setNumThreads,
  supportedIsas,
} from 'bptt';
import type { Backend, Checkpoint, ForwardOutput, LossAndGradientsOutput, OptimizerKind, RNNOptions, TrainStepOutput } from 'bptt';

/** True when A and B are the same type (not merely assignable). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | void {}

// Tensors: the element type follows the array type; nothing else makes one.
const ids = Tensor.from(new Int32Array(6), [3, 2]);
const dense = Tensor.from(new Float32Array(6), [3, 2]);
assertType<Equal<ReturnType<typeof ids.toArray>, Int32Array>>();
assertType<Equal<ReturnType<typeof dense.toArray>, Float32Array>>();
assertType<Equal<typeof dense.shape, readonly number[]>>();
assertType<Equal<ReturnType<typeof Tensor.randn>, Tensor<'float32'>>>();
// @ts-expect-error: float64 data is not a tensor type
Tensor.from(new Float64Array(6), [3, 2]);
// @ts-expect-error: a plain array must be typed first
Tensor.from([1, 2, 3], [3]);
// @ts-expect-error: the constructor is private; Tensor.from / zeros / randn make tensors
new Tensor('float32', [2]);
// @ts-expect-error: a typed array can only be written into a tensor of its type
ids.write(new Float32Array(6));
dense.dispose();
void dense.isDisposed;

// The model.
const options: RNNOptions = { inputSize: 5, hiddenSize: 8, outputSize: 5, seed: 1, backend: 'reference' };
const rnn = new RNN(options);
// @ts-expect-error: hiddenSize is required
new RNN({ inputSize: 5, outputSize: 5 });
// @ts-expect-error: the backends are 'native' and 'reference'
new RNN({ inputSize: 5, hiddenSize: 8, outputSize: 5, backend: 'gpu' });
assertType<Equal<typeof rnn.params.W, Tensor>>();

const fwd = rnn.forward(ids, { h0: Tensor.zeros([2, 8]) });
assertType<Equal<typeof fwd, ForwardOutput>>();
assertType<Equal<typeof fwd.logits, Tensor>>();

const lg = rnn.lossAndGradients(ids, ids, { truncate: 2, reduction: 'sum' });
assertType<Equal<typeof lg, LossAndGradientsOutput>>();
assertType<Equal<typeof lg.loss, number>>();
assertType<Equal<typeof lg.grads.h0, Tensor>>();
// @ts-expect-error: targets are required
rnn.lossAndGradients(ids);
// @ts-expect-error: the reductions are 'mean' and 'sum'
rnn.lossAndGradients(ids, ids, { reduction: 'max' });
// Gradients are keyed by parameter name: U, W, b, V, c (and h0) for the default model, PyTorch's
// state_dict names for the others.
assertType<Equal<typeof lg.grads, Record<string, Tensor>>>();

const adam = new Optimizer(rnn, { kind: 'adam', beta1: 0.9 });
const step = rnn.trainStep(ids, ids, { lr: 1e-3, clipNorm: 5, optimizer: adam });
assertType<Equal<typeof step, TrainStepOutput>>();
assertType<Equal<typeof step.clipped, boolean>>();
// @ts-expect-error: lr is required
rnn.trainStep(ids, ids, { clipNorm: 5 });
// @ts-expect-error: there is no optimizer kind 'lbfgs'
new Optimizer(rnn, { kind: 'lbfgs' });
assertType<Equal<OptimizerKind, 'sgd' | 'momentum' | 'nesterov' | 'adagrad' | 'rmsprop' | 'adam'>>();

async function asyncCalls(): Promise<void> {
  assertType<Equal<Awaited<ReturnType<typeof rnn.trainStepAsync>>, TrainStepOutput>>();
  const out: ForwardOutput = await rnn.forwardAsync(ids);
  void out;
}
void asyncCalls;

// Checkpoints.
saveCheckpoint('m.safetensors', rnn);
const ckpt: Checkpoint = loadCheckpoint('m.safetensors', { backend: 'reference' });
assertType<Equal<typeof ckpt.rnn, RNN>>();
// @ts-expect-error: a checkpoint is saved from a model
saveCheckpoint('m.safetensors', adam);

// Native runtime controls.
const active: string = isa();
const isas: string[] = supportedIsas();
setIsa('avx2');
setIsa('auto');
// @ts-expect-error: not an instruction set bptt has kernels for
setIsa('sse4');
setNumThreads(2);
// @ts-expect-error: a thread count is a number
setNumThreads('2');
assertType<Equal<ReturnType<typeof numThreads>, number>>();
assertType<Equal<ReturnType<typeof nativeAvailable>, boolean>>();
void [active, isas];

// Backends over plain typed arrays, and the error family.
const oracle: Backend = backends.reference;
const native: Backend = backends.native;
void [oracle, native];
const err: BpttError = new ShapeError('x');
const unavailable: Error = new NativeUnavailableError('x');
void [err, unavailable];
