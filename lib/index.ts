/**
 * bptt: recurrent networks (tanh/ReLU RNN, LSTM, GRU; stacked, bidirectional) trained with exact
 * and truncated backpropagation through time, in a C++ addon behind a typed TypeScript API.
 *
 * Layouts are row-major and time-major: token inputs int32 [T, B], dense inputs float32
 * [T, B, D], targets int32 [T, B] (-1 = ignored), states [B, H] for the default one-layer tanh
 * model and [L*dirs, B, H] for every other (index l*dirs + d, as PyTorch).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Tensor, Optimizer } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 4, hiddenSize: 8, outputSize: 4, seed: 1 });
 * const inputs = Tensor.from(Int32Array.of(0, 1, 2, 3), [4, 1]); // [T, B] token ids
 * const targets = Tensor.from(Int32Array.of(1, 2, 3, 0), [4, 1]); // the next token of each
 * const adam = new Optimizer(rnn, { kind: 'adam' });
 * const first = rnn.trainStep(inputs, targets, { lr: 0.05, optimizer: adam }).loss;
 * let last = first;
 * for (let i = 0; i < 50; i++) last = rnn.trainStep(inputs, targets, { lr: 0.05, optimizer: adam }).loss;
 * assert.ok(last < first / 4);
 * ```
 * @module
 */
import { native } from './backends/native';
import { reference } from './backends/reference';
import { addon, nativeAvailable } from './native';

export { RNN } from './rnn';
export type {
  BackendName,
  RNNOptions,
  Params,
  ParamValues,
  ForwardOptions,
  ForwardOutput,
  LossAndGradientsOptions,
  LossAndGradientsOutput,
  TrainStepOptions,
  TrainStepOutput,
} from './rnn';
export type { RNNSampleOptions } from './rnn';
// Task heads, initialisations and the model API around them (heads).
export type { HeadSpec, NormalizedHeadSpec } from './engine/model';
export type { InitKind } from './stack';
export type { PredictOptions, OutputGradientsOptions, OutputGradientsOutput, LayerView } from './rnn';
export { Tensor } from './tensor';
export type { DType, TypedArrayFor } from './tensor';
export { Optimizer, OPTIMIZER_KINDS } from './optim';
export type { OptimizerKind, OptimizerOptions, OptimizerHyperparameters, ParameterOwner } from './optim';
export { Rng } from './rng';
export * from './errors';
export type {
  Backend,
  Dims,
  FloatArray,
  ParamArrays,
  ParamName,
  InputArrays,
  Sequence,
  Reduction,
  ForwardResult,
  GradientOptions,
  Gradients,
  GradientResult,
} from './backend';
export { NativeBackend } from './backends/native';
export { ReferenceBackend, lagGradientNorms, jacobianProductNorms, truncationBias } from './backends/reference';
export type { LagGradientNorms, TruncationBias } from './backends/reference';
export { nativeAvailable } from './native';
export * from './train';
export * from './engine';
// Gradient diagnostics (issue 12): per-lag gradient norms, Jacobian products, spectra, truncation bias.
export { diagnose, diagnoseAsync, diagnosisToJson } from './diagnostics/diagnose';
export type { DiagnoseOptions, Diagnosis, LagProfile, JacobianProfile, SpectralBlock, TruncationBiasEntry } from './diagnostics/diagnose';
export { tbpttMisalignment } from './diagnostics/misalignment';
export type { MisalignmentEntry, MisalignmentOptions } from './diagnostics/misalignment';

/**
 * The compute backends over plain typed arrays, for libraries that bring their own tensors:
 * `native` (the addon, float32 results) and `reference` (the pure-TS float64 oracle, which needs
 * no addon). Each is a {@link Backend} (the default one-layer tanh model: `forward`,
 * `lossAndGradients`) and a {@link LayerBackend} (the recurrent stack alone: `layerForward`,
 * `layerBackward`, for any cell, depth and direction). Both validate every call in full, with
 * the same checks and errors; the native layer calls take Float32Array only, where the reference
 * backend also takes Float64Array.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { backends } from 'bptt';
 *
 * const dims = { inputSize: 2, hiddenSize: 2, outputSize: 2 };
 * const params = {
 *   U: Float32Array.of(0.5, -0.5, 0.25, 0.75), W: Float32Array.of(0.1, 0.2, -0.3, 0.4), b: Float32Array.of(0, 0.1),
 *   V: Float32Array.of(1, 0, 0, 1), c: Float32Array.of(0, 0),
 * };
 * const seq = { steps: 3, batch: 1, input: { kind: 'tokens', data: Int32Array.of(0, 1, 1) } } as const;
 * const f32 = backends.native.forward(dims, params, seq); // Float32Array results
 * const f64 = backends.reference.forward(dims, params, seq); // Float64Array results
 * f64.logits.forEach((z, i) => assert.ok(Math.abs(z - f32.logits[i]) < 1e-6));
 * ```
 */
export const backends = { native, reference } as const;

/**
 * The instruction set the native kernels use now: 'avx512', 'avx2' or 'scalar'; 'unavailable'
 * when the addon cannot be loaded (nativeAvailable() is false; the reference backend still works).
 * The addon picks the best one the CPU and OS support at load time, unless the BPTT_ISA
 * environment variable names one; {@link setIsa} changes it for the calling thread.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { isa, supportedIsas } from 'bptt';
 *
 * console.log(`kernels: ${isa()}`); // e.g. 'avx512'
 * if (isa() !== 'unavailable') assert.ok(supportedIsas().includes(isa()));
 * ```
 */
export function isa(): 'avx512' | 'avx2' | 'scalar' | 'unavailable' {
  return nativeAvailable() ? (addon().isa() as 'avx512' | 'avx2' | 'scalar') : 'unavailable';
}

/**
 * Instruction sets this build and CPU can run, best first ('avx512', 'avx2', 'scalar'); [] when
 * the addon cannot be loaded. 'scalar' is always among them when the addon loads.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { nativeAvailable, supportedIsas } from 'bptt';
 *
 * const isas = supportedIsas();
 * assert.equal(isas.includes('scalar'), nativeAvailable());
 * ```
 */
export function supportedIsas(): string[] {
  return nativeAvailable() ? (addon().supportedIsas() as string[]) : [];
}

/**
 * Forces an instruction set for the later native calls of the calling thread ('auto' picks the
 * best again); like the BPTT_ISA environment variable, at run time. Each worker thread keeps its
 * own choice. Results differ between instruction sets only by float32 rounding (their sums are
 * ordered differently).
 *
 * @throws RangeError for an instruction set this build or CPU cannot run (the message lists those
 * it can); NativeUnavailableError when the addon cannot be loaded.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { isa, setIsa } from 'bptt';
 *
 * setIsa('scalar'); // e.g. to compare against the vector kernels
 * assert.equal(isa(), 'scalar');
 * setIsa('auto');
 * ```
 */
export function setIsa(name: 'scalar' | 'avx2' | 'avx512' | 'auto'): void {
  try {
    addon().setIsa(name);
  } catch (err) {
    throw new RangeError(err instanceof Error ? err.message : String(err));
  }
}

/**
 * Sets how many threads the native kernels use (default: the available cores, or the
 * BPTT_NUM_THREADS environment variable): one pool, shared by every thread of the process and
 * safe for concurrent callers. Products split into whole register tiles, so results are bitwise
 * identical for any thread count; products under 2^20 multiply-adds stay on one thread.
 *
 * @throws RangeError unless `n` is an integer in [1, 1024]; NativeUnavailableError when the addon
 * cannot be loaded.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { numThreads, setNumThreads } from 'bptt';
 *
 * const before = numThreads();
 * setNumThreads(1);
 * assert.equal(numThreads(), 1);
 * setNumThreads(before);
 * ```
 */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new RangeError(`setNumThreads expects an integer in [1, 1024], got ${n}`);
  addon().setNumThreads(n);
}

/**
 * The number of threads the native kernels use (see {@link setNumThreads}).
 *
 * @throws NativeUnavailableError when the addon cannot be loaded.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { numThreads } from 'bptt';
 *
 * assert.ok(numThreads() >= 1);
 * ```
 */
export function numThreads(): number {
  return addon().numThreads() as number;
}

// report: long-range tasks (adding problem, copy memory task), the diagnosis report and `bptt diagnose`
export { addingProblem, copyTask, longRangeTask, copyBaselineLoss, ADDING_BASELINE_MSE } from './tasks/longrange';
export type { AddingProblem, CopyTask, LongRangeTask, LongRangeGenerator, LongRangeBatch, AddingMetrics, CopyMetrics } from './tasks/longrange';
export { renderReport } from './diagnostics/report';
export type { ReportInput, ReportDiagnosis } from './diagnostics/report';
export { terminalSummary } from './diagnostics/terminal';
export { runDiagnose } from './diagnostics/command';
export type { DiagnoseCommandOptions } from './diagnostics/command';
