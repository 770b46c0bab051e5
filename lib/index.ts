/**
 * bptt: Elman RNN training with exact and truncated backpropagation through time.
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
export { Tensor } from './tensor';
export type { DType } from './tensor';
export { Optimizer, OPTIMIZER_KINDS } from './optim';
export type { OptimizerKind, OptimizerOptions, OptimizerHyperparameters } from './optim';
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

/** The compute backends over plain typed arrays: the addon, and the pure-TS float64 oracle. */
export const backends = { native, reference } as const;

/**
 * The instruction set the native kernels use now: 'avx512', 'avx2' or 'scalar'; 'unavailable'
 * when the addon cannot be loaded (nativeAvailable() is false; the reference backend still works).
 */
export function isa(): 'avx512' | 'avx2' | 'scalar' | 'unavailable' {
  return nativeAvailable() ? (addon().isa() as 'avx512' | 'avx2' | 'scalar') : 'unavailable';
}

/** Instruction sets this build and CPU can run, best first; [] when the addon cannot be loaded. */
export function supportedIsas(): string[] {
  return nativeAvailable() ? (addon().supportedIsas() as string[]) : [];
}

/** Forces an instruction set ('auto' picks the best); like the BPTT_ISA variable, at run time. */
export function setIsa(name: 'scalar' | 'avx2' | 'avx512' | 'auto'): void {
  try {
    addon().setIsa(name);
  } catch (err) {
    throw new RangeError(err instanceof Error ? err.message : String(err));
  }
}

/** Threads the native kernels use (default: available cores). */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new RangeError(`setNumThreads expects an integer in [1, 1024], got ${n}`);
  addon().setNumThreads(n);
}

export function numThreads(): number {
  return addon().numThreads() as number;
}
