/**
 * Model checkpoints in the safetensors format, under the names a PyTorch nn.RNN + nn.Linear
 * state_dict uses, so PyTorch loads the weights directly:
 *
 *   rnn.weight_ih_l0 = U [H, D]   rnn.weight_hh_l0 = W [H, H]
 *   rnn.bias_ih_l0   = b [H]      rnn.bias_hh_l0   = zeros [H]   (PyTorch adds the two biases)
 *   fc.weight        = V [K, H]   fc.bias          = c [K]
 *
 * Training checkpoints add the optimizer state as `optim.<param>.<slot>` tensors, the carried
 * hidden state and kept inputs as `train.*` tensors, and in `__metadata__` (string values, JSON
 * where structured): the vocabulary, hyperparameters, optimizer settings and step count, the data
 * position and the RNG state, which is what a resumed run needs to continue bit-identically.
 * PyTorch users load such a file with `load_state_dict(sd, strict=False)` or drop those keys.
 */
import * as fs from 'fs';
import { PARAM_NAMES, ParamName, checkFinite } from '../backend';
import { CheckpointError } from '../errors';
import { nativeAvailable } from '../native';
import { OPTIMIZER_KINDS, Optimizer, OptimizerKind } from '../optim';
import { Rng } from '../rng';
import { BackendName, RNN } from '../rnn';
import type { BatcherState } from './batcher';
import type { ClipSummary } from './clipping';
import { RawTensor, WritableTensor, decodeSafetensors, encodeSafetensors, toFloat32, toInt32, writeFileAtomic } from './safetensors';
import { CharTokenizer } from './tokenizer';
import type { Trainer, TrainerState } from './trainer';

export const CHECKPOINT_FORMAT = 'bptt/1';

/** PyTorch state_dict names of the model's parameters. */
export const TORCH_NAMES = {
  U: 'rnn.weight_ih_l0',
  W: 'rnn.weight_hh_l0',
  b: 'rnn.bias_ih_l0',
  V: 'fc.weight',
  c: 'fc.bias',
} as const satisfies Record<ParamName, string>;
export const TORCH_BIAS_HH = 'rnn.bias_hh_l0';

export interface CheckpointExtra {
  /** Default: rnn.tokenizer. */
  tokenizer?: CharTokenizer;
  /** Saves its optimizer and its state (carried hidden state, data position, step, clip counts). */
  trainer?: Trainer;
  /** An optimizer to save when no trainer is given. */
  optimizer?: Optimizer;
  /** A run's RNG (e.g. the one drawing samples), saved so a resumed run draws the same. */
  rng?: Rng;
  /** JSON-serializable settings of the run, returned as they were by loadCheckpoint. */
  hyperparameters?: Record<string, unknown>;
  /** More `__metadata__` entries. */
  metadata?: Record<string, string>;
}

export interface Checkpoint {
  rnn: RNN;
  tokenizer: CharTokenizer | null;
  /** The saved optimizer, state included, bound to `rnn`. */
  optimizer: Optimizer | null;
  /** For Trainer.loadState. */
  training: TrainerState | null;
  rng: Rng | null;
  hyperparameters: Record<string, unknown>;
  metadata: Record<string, string>;
}

export interface LoadOptions {
  /** Backend of the loaded model; default native when the addon loads, else reference. */
  backend?: BackendName;
}

/**
 * Writes a checkpoint atomically: a crash leaves the old file or the complete new one. Refuses
 * (and writes nothing) when a parameter, the optimizer state or the carried hidden state holds NaN
 * or Infinity (NonFiniteError), or the optimizer state is one loadCheckpoint would refuse
 * (RangeError): what saves, loads.
 */
export function saveCheckpoint(path: string, rnn: RNN, extra: CheckpointExtra = {}): void {
  writeFileAtomic(path, encodeCheckpoint(rnn, extra));
}

export function encodeCheckpoint(rnn: RNN, extra: CheckpointExtra = {}): Buffer {
  if (!(rnn instanceof RNN)) throw new TypeError('saveCheckpoint needs an RNN');
  const tensors = new Map<string, WritableTensor>();
  for (const name of PARAM_NAMES) {
    const p = rnn.params[name];
    const data = p.toArray() as Float32Array;
    checkFinite(`parameter ${name} (not saved)`, data);
    tensors.set(TORCH_NAMES[name], { shape: p.shape, data });
    if (name === 'b') tensors.set(TORCH_BIAS_HH, { shape: p.shape, data: new Float32Array(p.size) });
  }
  const metadata: Record<string, string> = {
    ...extra.metadata,
    format: CHECKPOINT_FORMAT,
    model: JSON.stringify({ inputSize: rnn.inputSize, hiddenSize: rnn.hiddenSize, outputSize: rnn.outputSize, seed: rnn.seed, nonlinearity: 'tanh' }),
  };
  const tokenizer = extra.tokenizer ?? rnn.tokenizer;
  if (tokenizer) {
    if (tokenizer.vocabSize !== rnn.inputSize || tokenizer.vocabSize !== rnn.outputSize) {
      throw new RangeError(`the tokenizer's ${tokenizer.vocabSize} characters do not match the model's ${rnn.inputSize} inputs and ${rnn.outputSize} outputs`);
    }
    metadata.vocab = tokenizer.serialize();
  }
  if (extra.hyperparameters) metadata.hyperparameters = JSON.stringify(extra.hyperparameters);
  const optimizer = extra.trainer?.optimizer ?? extra.optimizer;
  if (optimizer) {
    metadata.optimizer = JSON.stringify({ kind: optimizer.kind, ...optimizer.hyper, step: optimizer.step });
    const state = optimizer.state();
    optimizer.checkState(state, optimizer.step);
    for (const [key, data] of Object.entries(state)) {
      tensors.set(`optim.${key}`, { shape: rnn.params[key.split('.')[0] as ParamName].shape, data });
    }
  }
  if (extra.trainer) {
    if (extra.trainer.rnn !== rnn) throw new TypeError('the trainer trains another model');
    const s = extra.trainer.state();
    const batch = s.h ? s.h.length / rnn.hiddenSize : s.historySteps > 0 ? s.historyInputs.length / s.historySteps : 0;
    metadata.training = JSON.stringify({ step: s.step, k1: s.k1, k2: s.k2, data: s.data, clip: s.clip, historySteps: s.historySteps, batch });
    if (s.h) {
      checkFinite('carried hidden state train.h (not saved)', s.h);
      tensors.set('train.h', { shape: [batch, rnn.hiddenSize], data: s.h });
    }
    if (s.historySteps > 0) tensors.set('train.history', { shape: [s.historySteps, batch], data: s.historyInputs });
  }
  if (extra.rng) metadata.rng = JSON.stringify(Array.from(extra.rng.getState()));
  return encodeSafetensors(tensors, metadata);
}

/** Reads and validates a checkpoint (ours, or a PyTorch nn.RNN + nn.Linear state_dict). */
export function loadCheckpoint(path: string, options: LoadOptions = {}): Checkpoint {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path);
  } catch (err) {
    throw new CheckpointError(`cannot read checkpoint ${path}: ${(err as Error).message}`);
  }
  return decodeCheckpoint(bytes, options, `checkpoint ${path}`);
}

/**
 * Decodes and validates a checkpoint. Every failure is a CheckpointError whose message starts with
 * `what` (loadCheckpoint passes the file name), whatever part of the loader found it.
 */
export function decodeCheckpoint(bytes: Uint8Array, options: LoadOptions = {}, what = 'checkpoint'): Checkpoint {
  const made: { dispose(): void }[] = [];
  try {
    return decodeContents(bytes, options, what, made);
  } catch (err) {
    // Native memory of a half-built model goes back now, not at the next GC.
    for (const m of made) m.dispose();
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof CheckpointError && message.startsWith(what)) throw err;
    throw new CheckpointError(`${what}: ${message}`);
  }
}

function decodeContents(bytes: Uint8Array, options: LoadOptions, what: string, made: { dispose(): void }[]): Checkpoint {
  const { metadata, tensors } = decodeSafetensors(bytes, what);
  const fail = (msg: string): never => {
    throw new CheckpointError(`${what}: ${msg}`);
  };
  const floatTensor = (name: string, shape: readonly number[] | null): Float32Array => {
    const t = tensors.get(name) ?? fail(`missing tensor ${name}`);
    if (shape && (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i]))) fail(`tensor ${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    const data = toFloat32(t, `tensor ${name}`);
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) fail(`tensor ${name}[${i}] is ${data[i]}`);
    return data;
  };

  const ih = tensors.get(TORCH_NAMES.U) ?? fail(`missing tensor ${TORCH_NAMES.U}`);
  const fc = tensors.get(TORCH_NAMES.V) ?? fail(`missing tensor ${TORCH_NAMES.V}`);
  if (ih.shape.length !== 2 || fc.shape.length !== 2) fail(`${TORCH_NAMES.U} and ${TORCH_NAMES.V} must be matrices`);
  const [H, D] = ih.shape;
  const K = fc.shape[0];
  if (H < 1 || D < 1 || K < 1) fail(`model sizes must be positive, got hidden ${H}, input ${D}, output ${K}`);
  const model = metadata.model === undefined ? {} : parseObject(metadata.model, 'model', fail);
  for (const [key, value] of [['inputSize', D], ['hiddenSize', H], ['outputSize', K]] as const) {
    if (model[key] !== undefined && model[key] !== value) fail(`metadata says ${key} ${JSON.stringify(model[key])} but the tensors have ${value}`);
  }
  if (model.nonlinearity !== undefined && model.nonlinearity !== 'tanh') fail(`only tanh RNNs are supported, got ${JSON.stringify(model.nonlinearity)}`);

  const U = floatTensor(TORCH_NAMES.U, [H, D]);
  const W = floatTensor(TORCH_NAMES.W, [H, H]);
  const b = floatTensor(TORCH_NAMES.b, [H]);
  if (tensors.has(TORCH_BIAS_HH)) {
    const bhh = floatTensor(TORCH_BIAS_HH, [H]);
    // Skipping zeros keeps a -0 bias bit-identical through a save/load round trip.
    for (let i = 0; i < H; i++) {
      if (bhh[i] === 0) continue;
      const sum = b[i] + bhh[i];
      b[i] = sum;
      if (!Number.isFinite(b[i])) fail(`${TORCH_NAMES.b}[${i}] + ${TORCH_BIAS_HH}[${i}] = ${sum} overflows float32 (the model has one bias, their sum)`);
    }
  }
  const V = floatTensor(TORCH_NAMES.V, [K, H]);
  const c = floatTensor(TORCH_NAMES.c, [K]);
  const seed = typeof model.seed === 'number' && Number.isSafeInteger(model.seed) ? model.seed : 0;
  const backend = options.backend ?? (nativeAvailable() ? 'native' : 'reference');
  const rnn = new RNN({ inputSize: D, hiddenSize: H, outputSize: K, seed, backend });
  made.push(rnn);
  rnn.setParams({ U, W, b, V, c });

  let tokenizer: CharTokenizer | null = null;
  if (metadata.vocab !== undefined) {
    tokenizer = CharTokenizer.deserialize(metadata.vocab);
    if (tokenizer.vocabSize !== D || tokenizer.vocabSize !== K) fail(`vocabulary has ${tokenizer.vocabSize} characters but the model has ${D} inputs and ${K} outputs`);
    rnn.tokenizer = tokenizer;
  }

  let optimizer: Optimizer | null = null;
  if (metadata.optimizer !== undefined) {
    const o = parseObject(metadata.optimizer, 'optimizer', fail);
    if (typeof o.kind !== 'string' || !OPTIMIZER_KINDS.includes(o.kind as OptimizerKind)) fail(`unknown optimizer ${JSON.stringify(o.kind)}`);
    const num = (k: string): number | undefined => (typeof o[k] === 'number' ? (o[k] as number) : o[k] === undefined ? undefined : fail(`optimizer ${k} must be a number`));
    const opt = new Optimizer(rnn, { kind: o.kind as OptimizerKind, momentum: num('momentum'), beta1: num('beta1'), beta2: num('beta2'), eps: num('eps'), rho: num('rho') });
    made.push(opt);
    const state: Record<string, Float32Array> = {};
    for (const key of Object.keys(opt.state())) {
      const param = key.split('.')[0] as ParamName;
      state[key] = floatTensor(`optim.${key}`, rnn.params[param].shape);
    }
    opt.loadState(state, num('step') ?? 0);
    optimizer = opt;
  }

  let training: TrainerState | null = null;
  if (metadata.training !== undefined) training = parseTraining(metadata.training, tensors, H, fail);

  let rng: Rng | null = null;
  if (metadata.rng !== undefined) {
    const words = parseJson(metadata.rng, 'rng', fail);
    if (!Array.isArray(words) || words.length !== 4 || !words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff) || words.every((w) => w === 0)) {
      fail('rng must be four uint32 words, not all zero');
    }
    rng = new Rng();
    rng.setState(Uint32Array.from(words as number[]));
  }

  const hyperparameters = metadata.hyperparameters === undefined ? {} : parseObject(metadata.hyperparameters, 'hyperparameters', fail);
  return { rnn, tokenizer, optimizer, training, rng, hyperparameters, metadata };
}

function parseJson(text: string, key: string, fail: (msg: string) => never): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    return fail(`metadata ${key} is not valid JSON: ${(err as Error).message}`);
  }
}

function parseObject(text: string, key: string, fail: (msg: string) => never): Record<string, unknown> {
  const v = parseJson(text, key, fail);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`metadata ${key} must be a JSON object`);
  return v as Record<string, unknown>;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function parseTraining(text: string, tensors: Map<string, RawTensor>, H: number, fail: (msg: string) => never): TrainerState {
  const t = parseObject(text, 'training', fail);
  const { step, k1, k2, historySteps, batch, data, clip } = t;
  if (!isCount(step) || !isCount(k1) || !isCount(k2) || !isCount(historySteps) || !isCount(batch) || k1 < 1 || k2 < k1) {
    fail('metadata training needs integers step, k1, k2 >= k1 >= 1, historySteps and batch');
  }
  let dataState: BatcherState | null = null;
  if (data !== null) {
    const d = data as Record<string, unknown>;
    if (typeof d !== 'object' || !isCount(d.position) || !isCount(d.epoch) || typeof d.started !== 'boolean') fail('metadata training.data must hold position, epoch and started');
    dataState = { position: d.position as number, epoch: d.epoch as number, started: d.started as boolean };
  }
  const c = clip as Record<string, unknown>;
  const clipKeys = ['steps', 'clippedSteps', 'fractionClipped', 'lastNorm', 'meanNorm', 'maxNorm'] as const;
  if (typeof c !== 'object' || c === null || !clipKeys.every((k) => typeof c[k] === 'number' && Number.isFinite(c[k]))) fail('metadata training.clip must hold the clipping statistics');
  let h: Float32Array | null = null;
  const hRaw = tensors.get('train.h');
  if (hRaw) {
    if (hRaw.shape.length !== 2 || hRaw.shape[0] !== batch || hRaw.shape[1] !== H) fail(`tensor train.h has shape [${hRaw.shape.join(', ')}], expected [${batch}, ${H}]`);
    h = toFloat32(hRaw, 'tensor train.h');
    for (let i = 0; i < h.length; i++) if (!Number.isFinite(h[i])) fail(`tensor train.h[${i}] is ${h[i]}`);
  }
  let historyInputs: Int32Array = new Int32Array(0);
  const histRaw = tensors.get('train.history');
  if ((historySteps as number) > 0) {
    if (!histRaw) return fail('missing tensor train.history');
    if (histRaw.shape.length !== 2 || histRaw.shape[0] !== historySteps || histRaw.shape[1] !== batch) fail(`tensor train.history has shape [${histRaw.shape.join(', ')}], expected [${historySteps}, ${batch}]`);
    try {
      historyInputs = toInt32(histRaw, 'tensor train.history');
    } catch (err) {
      fail((err as Error).message);
    }
  }
  return {
    step: step as number,
    k1: k1 as number,
    k2: k2 as number,
    data: dataState,
    clip: Object.fromEntries(clipKeys.map((k) => [k, c[k]])) as unknown as ClipSummary,
    h,
    historyInputs,
    historySteps: historySteps as number,
  };
}
