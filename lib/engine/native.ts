/**
 * The recurrent engine on the native backend: layerForward / layerBackward (and their async
 * variants) over plain Float32Arrays, validated by the same checks as the float64 oracle
 * (spec.ts), then again in C++ (native/binding_layer.cc).
 *
 * One native LayerEngine per spec holds the scratch memory the calls reuse; engines are pooled per
 * spec so that concurrent asynchronous calls never share one. A forward's saved values live in a
 * native LayerRecord that the returned handle owns.
 */
import { TensorInUseError } from '../errors';
import { NativeAddon, addon } from '../native';
import {
  LayerBackend,
  LayerBackwardArgs,
  LayerBackwardResult,
  LayerBatch,
  LayerForwardOptions,
  LayerForwardRequest,
  LayerForwardResult,
  LayerInput,
  LayerSpec,
  LayerWeights,
  NormalizedLayerSpec,
  SavedForward,
  SavedOwner,
  checkLayerBackwardRequest,
  checkLayerForwardRequest,
  hasCellState,
  layerOutputSize,
  layerParameterTable,
  numDirections,
} from './spec';

const BACKEND_NAME = 'native';

/** The addon's LayerRecord: what one forward pass saved, in native memory. */
interface NativeLayerRecord {
  readonly disposed: boolean;
  readonly inUse: boolean;
  readonly bytes: number;
  dispose(): void;
}

/** The addon's LayerEngine (argument order: native/binding_layer.cc). */
interface NativeLayerEngine {
  readonly busy: boolean;
  forward(...args: unknown[]): void;
  forwardAsync(...args: unknown[]): Promise<void>;
  backward(...args: unknown[]): void;
  backwardAsync(...args: unknown[]): Promise<void>;
}

interface LayerAddon {
  LayerEngine: new (cell: string, inputSize: number, hiddenSize: number, numLayers: number, bidirectional: boolean, dropout: number) => NativeLayerEngine;
  LayerRecord: new () => NativeLayerRecord;
}

function layerAddon(): LayerAddon {
  return addon() as NativeAddon as LayerAddon;
}

/** A native forward pass's saved values; only the native layerBackward of the same spec reads it. */
export class NativeSavedForward implements SavedForward {
  readonly backend = BACKEND_NAME;

  /** @internal */
  constructor(
    readonly spec: NormalizedLayerSpec,
    readonly steps: number,
    readonly batch: number,
    readonly inputKind: LayerInput['kind'],
    /** @internal */ readonly record: NativeLayerRecord,
  ) {}

  get isDisposed(): boolean {
    return this.record.disposed;
  }

  /** Native memory held, in bytes (0 once disposed). */
  get bytes(): number {
    return this.record.bytes;
  }

  /** Frees the saved values now (the GC frees them otherwise). Idempotent. */
  dispose(): void {
    if (this.record.disposed) return;
    if (this.record.inUse) throw new TensorInUseError('cannot dispose a saved forward pass while an asynchronous layer call uses it');
    this.record.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

const OWNER: SavedOwner = { name: BACKEND_NAME, owns: (saved) => saved instanceof NativeSavedForward };

/**
 * The arguments every native call that runs the stack forward takes, in the addon's order: the
 * weights in the parameter table's order, T, B, the token or dense input, lengths, h0, c0, and the
 * dropout settings. The request was checked with allowF64 = false: every array is a Float32Array.
 */
export function layerRunArgs(req: LayerForwardRequest, weights: LayerWeights): unknown[] {
  const b = req.batch;
  return [
    layerParameterTable(req.spec).map((p) => weights[p.name]),
    b.steps,
    b.batch,
    b.input.kind === 'tokens' ? b.input.data : null,
    b.input.kind === 'dense' ? b.input.data : null,
    b.lengths,
    b.h0,
    b.c0,
    req.options.training,
    req.options.dropoutSeed,
  ];
}

function specKey(s: NormalizedLayerSpec): string {
  return `${s.cell}/${s.inputSize}/${s.hiddenSize}/${s.numLayers}/${s.bidirectional}/${s.dropout}`;
}

/** Native error codes as the library's typed errors. */
function translate(err: unknown): unknown {
  if (typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'BPTT_IN_USE') {
    return new TensorInUseError(String((err as { message?: unknown }).message));
  }
  return err;
}

export class NativeLayerBackend implements LayerBackend<Float32Array> {
  readonly name = BACKEND_NAME;
  readonly #engines = new Map<string, NativeLayerEngine[]>();

  /** An idle engine for the spec, made on first need. */
  private engine(spec: NormalizedLayerSpec): NativeLayerEngine {
    const key = specKey(spec);
    let pool = this.#engines.get(key);
    if (pool === undefined) {
      pool = [];
      this.#engines.set(key, pool);
    }
    const idle = pool.find((e) => !e.busy);
    if (idle) return idle;
    const created = new (layerAddon().LayerEngine)(spec.cell, spec.inputSize, spec.hiddenSize, spec.numLayers, spec.bidirectional, spec.dropout);
    pool.push(created);
    return created;
  }

  layerForward(spec: LayerSpec, weights: LayerWeights, batch: LayerBatch, options?: LayerForwardOptions): LayerForwardResult<Float32Array> {
    const call = this.prepareForward(spec, weights, batch, options);
    try {
      call.engine.forward(...call.args);
    } catch (err) {
      call.record.dispose();
      throw translate(err);
    }
    return call.result;
  }

  /** layerForward on a worker thread; the inputs are copied before it returns its promise. */
  async layerForwardAsync(spec: LayerSpec, weights: LayerWeights, batch: LayerBatch, options?: LayerForwardOptions): Promise<LayerForwardResult<Float32Array>> {
    const call = this.prepareForward(spec, weights, batch, options);
    try {
      await call.engine.forwardAsync(...call.args);
    } catch (err) {
      call.record.dispose();
      throw translate(err);
    }
    return call.result;
  }

  layerBackward(spec: LayerSpec, weights: LayerWeights, saved: SavedForward, args: LayerBackwardArgs): LayerBackwardResult<Float32Array> {
    const call = this.prepareBackward(spec, weights, saved, args);
    try {
      call.engine.backward(...call.args);
    } catch (err) {
      throw translate(err);
    }
    return call.result;
  }

  /** layerBackward on a worker thread; the saved handle cannot be disposed until it settles. */
  async layerBackwardAsync(spec: LayerSpec, weights: LayerWeights, saved: SavedForward, args: LayerBackwardArgs): Promise<LayerBackwardResult<Float32Array>> {
    const call = this.prepareBackward(spec, weights, saved, args);
    try {
      await call.engine.backwardAsync(...call.args);
    } catch (err) {
      throw translate(err);
    }
    return call.result;
  }

  private prepareForward(spec: LayerSpec, weights: LayerWeights, batch: LayerBatch, options: LayerForwardOptions | undefined) {
    const req = checkLayerForwardRequest(spec, weights, batch, options, false);
    const s = req.spec;
    const b = req.batch;
    const T = b.steps;
    const B = b.batch;
    const states = s.numLayers * numDirections(s) * B * s.hiddenSize;
    const lstm = hasCellState(s.cell);
    const y = new Float32Array(T * B * layerOutputSize(s));
    const hT = new Float32Array(states);
    const cT = lstm ? new Float32Array(states) : null;
    const record = new (layerAddon().LayerRecord)();
    const engine = this.engine(s);
    const args = [
      ...layerRunArgs(req, weights),
      y,
      hT,
      cT,
      record,
    ];
    const saved = new NativeSavedForward(s, T, B, b.input.kind, record);
    return { engine, args, record, result: { y, hT, cT, saved } as LayerForwardResult<Float32Array> };
  }

  private prepareBackward(spec: LayerSpec, weights: LayerWeights, saved: SavedForward, args: LayerBackwardArgs) {
    const req = checkLayerBackwardRequest(spec, weights, saved, args, OWNER, false);
    const record = (saved as NativeSavedForward).record; // OWNER.owns checked the class
    if (record.inUse) throw new TensorInUseError('saved is used by a running asynchronous layer call; await it first');
    const s = req.spec;
    const table = layerParameterTable(s);
    const { steps: T, batch: B } = saved;
    const states = s.numLayers * numDirections(s) * B * s.hiddenSize;
    const lstm = hasCellState(s.cell);
    const dx = saved.inputKind === 'dense' ? new Float32Array(T * B * s.inputSize) : null;
    const dh0 = new Float32Array(states);
    const dc0 = lstm ? new Float32Array(states) : null;
    const grads: Record<string, Float32Array> = {};
    for (const p of table) grads[p.name] = new Float32Array(p.size);
    const a = req.args;
    const engine = this.engine(s);
    const callArgs = [
      // checkLayer*Request(…, allowF64 = false) refused anything but Float32Arrays.
      table.map((p) => weights[p.name]),
      record,
      a.dy,
      a.dhT,
      a.dcT,
      a.truncate ?? 0,
      dx,
      dh0,
      dc0,
      table.map((p) => grads[p.name]),
    ];
    return { engine, args: callArgs, result: { dx, dh0, dc0, grads } as LayerBackwardResult<Float32Array> };
  }
}
