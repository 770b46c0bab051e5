/**
 * Typed errors. Every message says what was expected and what came instead.
 * All extend BpttError so callers can catch the library's errors as a family.
 */

/**
 * The base of the library's own errors, to catch them as a family; `name` is the subclass's name.
 * Invalid sizes and option values are RangeError or TypeError instead, as in the standard library.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { BpttError, Tensor } from 'bptt';
 *
 * try {
 *   Tensor.from(new Float32Array(5), [2, 3]);
 *   assert.fail('expected a ShapeError');
 * } catch (err) {
 *   assert.ok(err instanceof BpttError);
 *   assert.equal(err.name, 'ShapeError');
 *   console.log(err.message); // Tensor.from: shape [2, 3] needs 6 elements, got 5
 * }
 * ```
 */
export class BpttError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * A tensor or array has the wrong shape or length: inputs, targets, h0, parameters, optimizer
 * state.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, ShapeError, Tensor } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
 * const inputs = Tensor.from(Int32Array.of(0, 1, 2), [3, 1]);
 * const targets = Tensor.from(Int32Array.of(1, 2), [2, 1]); // one step short
 * assert.throws(() => rnn.lossAndGradients(inputs, targets), ShapeError);
 * ```
 */
export class ShapeError extends BpttError {}

/**
 * A tensor or array has the wrong element type, e.g. float32 targets or Float64Array parameters.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { DTypeError, RNN, Tensor } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
 * const inputs = Tensor.from(Int32Array.of(0, 1, 2), [3, 1]);
 * const targets = Tensor.from(Float32Array.of(1, 2, 0), [3, 1]); // targets are int32 class ids
 * assert.throws(() => rnn.lossAndGradients(inputs, targets), DTypeError);
 * ```
 */
export class DTypeError extends BpttError {}

/**
 * A tensor (or a layer forward's `saved` handle) was used after dispose().
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { DisposedError, Tensor } from 'bptt';
 *
 * const t = Tensor.zeros([2, 2]);
 * t.dispose();
 * assert.throws(() => t.toArray(), DisposedError);
 * ```
 */
export class DisposedError extends BpttError {}

/**
 * A running asynchronous job holds what was to be changed: disposing or writing a tensor it uses,
 * calling a model while it runs a job, starting a second `Trainer.fit()`, disposing a `saved`
 * handle an asynchronous `layerBackward` reads. Await the job first.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Tensor, TensorInUseError, nativeAvailable } from 'bptt';
 *
 * if (nativeAvailable()) {
 *   const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
 *   const inputs = Tensor.from(Int32Array.of(0, 1, 2), [3, 1]);
 *   const targets = Tensor.from(Int32Array.of(1, 2, 0), [3, 1]);
 *   const step = rnn.trainStepAsync(inputs, targets, { lr: 0.1 }); // runs on a worker thread
 *   assert.throws(() => inputs.dispose(), TensorInUseError);
 *   await step;
 *   inputs.dispose(); // fine now
 * }
 * ```
 */
export class TensorInUseError extends BpttError {}

/**
 * A value that must be finite is NaN or infinite: in inputs, h0 or parameters; in a training
 * step's loss, gradient, new parameters or optimizer state (the step then changes nothing); in
 * what a checkpoint would save (nothing is written).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { NonFiniteError, RNN, Tensor } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 2, outputSize: 3, seed: 1 });
 * const h0 = Tensor.from(Float32Array.of(0, NaN), [1, 2]); // [B, H]
 * assert.throws(() => rnn.forward(Tensor.from(Int32Array.of(0), [1, 1]), { h0 }), NonFiniteError);
 * ```
 */
export class NonFiniteError extends BpttError {}

/**
 * The native addon could not be loaded (or does not support the request). The message says where
 * it looked and how to build it; the pure-TS `'reference'` backend keeps working without it.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { NativeUnavailableError, RNN } from 'bptt';
 *
 * const options = { inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 };
 * let rnn: RNN;
 * try {
 *   rnn = new RNN({ ...options, backend: 'native' });
 * } catch (err) {
 *   if (!(err instanceof NativeUnavailableError)) throw err;
 *   rnn = new RNN({ ...options, backend: 'reference' }); // same math, float64, slower
 * }
 * assert.equal(rnn.hiddenSize, 4);
 * ```
 */
export class NativeUnavailableError extends BpttError {}

/**
 * A checkpoint could not be loaded: unreadable, malformed, truncated or inconsistent, or holding
 * a state no run can reach. Every loading failure is one; the message starts with the file name.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CheckpointError, decodeCheckpoint, loadCheckpoint } from 'bptt';
 *
 * assert.throws(() => loadCheckpoint('/no/such/file.safetensors'), CheckpointError);
 * assert.throws(() => decodeCheckpoint(new Uint8Array(3)), /checkpoint is truncated/);
 * ```
 */
export class CheckpointError extends BpttError {}
