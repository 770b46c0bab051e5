/**
 * Typed errors. Every message says what was expected and what came instead.
 * All extend BpttError so callers can catch the library's errors as a family.
 */
export class BpttError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A tensor or array has the wrong shape or length. */
export class ShapeError extends BpttError {}

/** A tensor or array has the wrong element type. */
export class DTypeError extends BpttError {}

/** A tensor was used after dispose(). */
export class DisposedError extends BpttError {}

/** A tensor is held by a running asynchronous job and cannot be disposed or written. */
export class TensorInUseError extends BpttError {}

/** A value that must be finite is NaN or infinite. */
export class NonFiniteError extends BpttError {}

/** The native addon could not be loaded or does not support the request. */
export class NativeUnavailableError extends BpttError {}

/** A checkpoint file is malformed, truncated or inconsistent. */
export class CheckpointError extends BpttError {}
