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
import { ParamName, checkFinite } from '../backend';
import { CheckpointError } from '../errors';
import { nativeAvailable } from '../native';
import { OPTIMIZER_KINDS, Optimizer, OptimizerKind } from '../optim';
import { Rng } from '../rng';
import { CellKind } from '../engine/spec';
import { BackendName, RNN } from '../rnn';
import { Tensor } from '../tensor';
import type { HeadSpec } from '../engine/model';
import type { InitKind } from '../stack';
import type { BatcherState } from './batcher';
import type { ClipSummary } from './clipping';
import { RawTensor, WritableTensor, decodeSafetensors, encodeSafetensors, toFloat32, toInt32, writeFileAtomic } from './safetensors';
import { CharTokenizer } from './tokenizer';
import type { Trainer, TrainerState } from './trainer';

/**
 * The `format` entry of a checkpoint's metadata: what this version writes.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CHECKPOINT_FORMAT, RNN, decodeSafetensors, encodeCheckpoint } from 'bptt';
 *
 * const bytes = encodeCheckpoint(new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 }));
 * assert.equal(decodeSafetensors(bytes).metadata.format, CHECKPOINT_FORMAT); // 'bptt/1'
 * ```
 */
export const CHECKPOINT_FORMAT = 'bptt/1';

/**
 * PyTorch state_dict names of the default model's parameters: U is `rnn.weight_ih_l0`, W
 * `rnn.weight_hh_l0`, b `rnn.bias_ih_l0`, V `fc.weight`, c `fc.bias` (an nn.RNN followed by an
 * nn.Linear named `rnn` and `fc`).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, TORCH_NAMES, decodeSafetensors, encodeCheckpoint } from 'bptt';
 *
 * const { tensors } = decodeSafetensors(encodeCheckpoint(new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 2, seed: 1 })));
 * assert.deepEqual(tensors.get(TORCH_NAMES.V)!.shape, [2, 4]);
 * ```
 */
export const TORCH_NAMES = {
  U: 'rnn.weight_ih_l0',
  W: 'rnn.weight_hh_l0',
  b: 'rnn.bias_ih_l0',
  V: 'fc.weight',
  c: 'fc.bias',
} as const satisfies Record<ParamName, string>;
/**
 * The state_dict name of PyTorch's second recurrent bias. The default model has one bias b, so
 * saving writes zeros here and loading adds it to `rnn.bias_ih_l0`.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, TORCH_BIAS_HH, decodeSafetensors, encodeCheckpoint } from 'bptt';
 *
 * const { tensors } = decodeSafetensors(encodeCheckpoint(new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 })));
 * assert.ok(tensors.get(TORCH_BIAS_HH)!.bytes.every((byte) => byte === 0));
 * ```
 */
export const TORCH_BIAS_HH = 'rnn.bias_hh_l0';

/**
 * What a checkpoint saves besides the model: a tokenizer, a trainer (its optimizer and run state)
 * or an optimizer, an RNG, the run's settings and more metadata.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CharTokenizer, Optimizer, RNN, Rng, decodeCheckpoint, encodeCheckpoint, type CheckpointExtra } from 'bptt';
 *
 * const tokenizer = CharTokenizer.fromText('abc');
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
 * const extra: CheckpointExtra = { tokenizer, optimizer: new Optimizer(rnn, { kind: 'adam' }), rng: new Rng(5), hyperparameters: { lr: 2e-3 }, metadata: { note: 'demo' } };
 * const loaded = decodeCheckpoint(encodeCheckpoint(rnn, extra));
 * assert.deepEqual(loaded.hyperparameters, { lr: 2e-3 });
 * assert.equal(loaded.metadata.note, 'demo');
 * ```
 */
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
  /**
   * The task the model was trained for and what its data needs (`kind`: 'lm', 'classify',
   * 'forecast', ...; the normalisation, vocabulary, labels, window settings), saved as the
   * `task` metadata entry and returned as it was by loadCheckpoint.
   */
  task?: Record<string, unknown>;
}

/**
 * What {@link loadCheckpoint} returns: the model and whatever else the file holds (null where it
 * holds nothing).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, decodeCheckpoint, encodeCheckpoint, type Checkpoint } from 'bptt';
 *
 * const saved = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, cell: 'lstm', seed: 1 });
 * const checkpoint: Checkpoint = decodeCheckpoint(encodeCheckpoint(saved));
 * assert.equal(checkpoint.rnn.cell, 'lstm');
 * assert.deepEqual([checkpoint.tokenizer, checkpoint.optimizer, checkpoint.training, checkpoint.rng], [null, null, null, null]);
 * ```
 */
export interface Checkpoint {
  /** The model, parameters loaded (its tokenizer set when the file has a vocabulary). */
  rnn: RNN;
  /** The vocabulary of a character model. */
  tokenizer: CharTokenizer | null;
  /** The saved optimizer, state included, bound to `rnn`. */
  optimizer: Optimizer | null;
  /** For Trainer.loadState. */
  training: TrainerState | null;
  /** The saved RNG, in its saved state. */
  rng: Rng | null;
  /** The run's settings as saved ({} when none). */
  hyperparameters: Record<string, unknown>;
  /** The task and its data settings as saved (see {@link CheckpointExtra.task}), or null. */
  task: Record<string, unknown> | null;
  /** Every `__metadata__` entry of the file. */
  metadata: Record<string, string>;
}

/**
 * Options of {@link loadCheckpoint}.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, decodeCheckpoint, encodeCheckpoint, type LoadOptions } from 'bptt';
 *
 * const bytes = encodeCheckpoint(new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 }));
 * const options: LoadOptions = { backend: 'reference' };
 * assert.equal(decodeCheckpoint(bytes, options).rnn.backend, 'reference');
 * ```
 */
export interface LoadOptions {
  /** Backend of the loaded model; default native when the addon loads, else reference. */
  backend?: BackendName;
}

/**
 * Writes a checkpoint atomically: a crash leaves the old file or the complete new one. Refuses
 * (and writes nothing) when a parameter, the optimizer state or the carried hidden state holds NaN
 * or Infinity (NonFiniteError), or the optimizer state is one loadCheckpoint would refuse
 * (RangeError): what saves, loads.
 *
 * The file is safetensors with PyTorch's state_dict names (see {@link TORCH_NAMES}; every other
 * model under its own `rnn.*` and `fc.*` names), so `load_state_dict` into nn.RNN/LSTM/GRU and
 * nn.Linear gives the same logits; training state goes in `optim.*` and `train.*` tensors and
 * the metadata.
 *
 * @throws TypeError when rnn is not an RNN or the trainer trains another model; RangeError for a
 * tokenizer of another size; an Error with the file's name when it cannot be written.
 *
 * @example
 * ```ts
 * import * as fs from 'node:fs';
 * import * as os from 'node:os';
 * import * as path from 'node:path';
 * import assert from 'node:assert/strict';
 * import { CharTokenizer, RNN, loadCheckpoint, saveCheckpoint } from 'bptt';
 *
 * const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-'));
 * try {
 *   const tokenizer = CharTokenizer.fromText('abcdef');
 *   const rnn = new RNN({ inputSize: 6, hiddenSize: 8, outputSize: 6, cell: 'gru', numLayers: 2, seed: 1 });
 *   const file = path.join(dir, 'model.safetensors');
 *   saveCheckpoint(file, rnn, { tokenizer });
 *   const loaded = loadCheckpoint(file);
 *   assert.deepEqual(loaded.rnn.params['fc.weight'].toArray(), rnn.params['fc.weight'].toArray());
 *   assert.equal(loaded.rnn.tokenizer?.vocabSize, 6);
 * } finally {
 *   fs.rmSync(dir, { recursive: true, force: true });
 * }
 * ```
 */
export function saveCheckpoint(path: string, rnn: RNN, extra: CheckpointExtra = {}): void {
  writeFileAtomic(path, encodeCheckpoint(rnn, extra));
}

/**
 * The bytes {@link saveCheckpoint} writes, in memory (e.g. to store elsewhere); the same checks.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, decodeCheckpoint, encodeCheckpoint } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
 * const bytes = encodeCheckpoint(rnn);
 * assert.deepEqual(decodeCheckpoint(bytes).rnn.params.W.toArray(), rnn.params.W.toArray());
 * ```
 */
export function encodeCheckpoint(rnn: RNN, extra: CheckpointExtra = {}): Buffer {
  if (!(rnn instanceof RNN)) throw new TypeError('saveCheckpoint needs an RNN');
  const tensors = new Map<string, WritableTensor>();
  for (const [name, p] of Object.entries(rnn.params)) {
    const data = p.toArray() as Float32Array;
    checkFinite(`parameter ${name} (not saved)`, data);
    if (name in TORCH_NAMES) {
      tensors.set(TORCH_NAMES[name as ParamName], { shape: p.shape, data });
      if (name === 'b') tensors.set(TORCH_BIAS_HH, { shape: p.shape, data: new Float32Array(p.size) });
    } else {
      tensors.set(name, { shape: p.shape, data });
    }
  }
  const model = {
    inputSize: rnn.inputSize,
    hiddenSize: rnn.hiddenSize,
    outputSize: rnn.outputSize,
    seed: rnn.seed,
    cell: rnn.cell,
    numLayers: rnn.numLayers,
    bidirectional: rnn.bidirectional,
    dropout: rnn.dropout,
    // PyTorch's nn.RNN argument (LSTM and GRU have none).
    ...(rnn.cell === 'tanh' || rnn.cell === 'relu' ? { nonlinearity: rnn.cell } : {}),
    // The head and the initialisation, when not the defaults (files without them load as before).
    ...(rnn.head.kind !== 'tokens' ? { head: rnn.head } : {}),
    ...(rnn.init !== 'pytorch' ? { init: rnn.init } : {}),
  };
  const metadata: Record<string, string> = { ...extra.metadata, format: CHECKPOINT_FORMAT, model: JSON.stringify(model) };
  if (rnn.dropoutStream) metadata.dropout_stream = JSON.stringify(Array.from(rnn.dropoutStream.getState()));
  const tokenizer = extra.tokenizer ?? rnn.tokenizer;
  if (tokenizer) {
    if (tokenizer.vocabSize !== rnn.inputSize || tokenizer.vocabSize !== rnn.outputSize) {
      throw new RangeError(`the tokenizer's ${tokenizer.vocabSize} characters do not match the model's ${rnn.inputSize} inputs and ${rnn.outputSize} outputs`);
    }
    metadata.vocab = tokenizer.serialize();
  }
  if (extra.hyperparameters) metadata.hyperparameters = JSON.stringify(extra.hyperparameters);
  if (extra.task) metadata.task = JSON.stringify(extra.task);
  const optimizer = extra.trainer?.optimizer ?? extra.optimizer;
  if (optimizer) {
    metadata.optimizer = JSON.stringify({ kind: optimizer.kind, ...optimizer.hyper, step: optimizer.step });
    const state = optimizer.state();
    optimizer.checkState(state, optimizer.step);
    for (const [key, data] of Object.entries(state)) {
      tensors.set(`optim.${key}`, { shape: rnn.params[stateParameter(key)].shape, data });
    }
  }
  if (extra.trainer) {
    if (extra.trainer.rnn !== rnn) throw new TypeError('the trainer trains another model');
    const s = extra.trainer.state();
    const perRow = rnn.stateShape(1).reduce((a, b) => a * b, 1);
    const batch = s.h ? s.h.length / perRow : s.historySteps > 0 ? s.historyInputs.length / s.historySteps : 0;
    metadata.training = JSON.stringify({ step: s.step, k1: s.k1, k2: s.k2, data: s.data, clip: s.clip, historySteps: s.historySteps, batch, best: s.best ?? null, stale: s.stale ?? 0 });
    for (const [name, v] of [['train.h', s.h], ['train.c', s.c ?? null]] as const) {
      if (v === null) continue;
      checkFinite(`carried state ${name} (not saved)`, v);
      tensors.set(name, { shape: rnn.stateShape(batch), data: v });
    }
    if (s.historySteps > 0) tensors.set('train.history', { shape: [s.historySteps, batch], data: s.historyInputs });
  }
  if (extra.rng) metadata.rng = JSON.stringify(Array.from(extra.rng.getState()));
  return encodeSafetensors(tensors, metadata);
}

/**
 * Reads and validates a checkpoint (ours, or a PyTorch nn.RNN + nn.Linear state_dict).
 * The model is rebuilt from the metadata or, for a plain state_dict, from the tensors' names and
 * shapes (cell from the gate count, layers, direction); F32, F64, F16 and BF16 tensors load.
 *
 * @throws CheckpointError for every failure, the file name first: unreadable, malformed,
 * truncated or inconsistent files, non-finite values, invalid optimizer or training state.
 *
 * @example
 * ```ts
 * import * as fs from 'node:fs';
 * import * as os from 'node:os';
 * import * as path from 'node:path';
 * import assert from 'node:assert/strict';
 * import { Optimizer, RNN, Tensor, loadCheckpoint, saveCheckpoint } from 'bptt';
 *
 * const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-'));
 * try {
 *   const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
 *   const optimizer = new Optimizer(rnn, { kind: 'adam' });
 *   rnn.trainStep(Tensor.from(Int32Array.of(0, 1, 2), [3, 1]), Tensor.from(Int32Array.of(1, 2, 0), [3, 1]), { lr: 0.01, optimizer });
 *   saveCheckpoint(path.join(dir, 'run.safetensors'), rnn, { optimizer });
 *   const { rnn: resumed, optimizer: restored } = loadCheckpoint(path.join(dir, 'run.safetensors'));
 *   assert.equal(restored!.step, 1);
 *   assert.deepEqual(restored!.state(), optimizer.state());
 *   console.log(resumed.backend);
 * } finally {
 *   fs.rmSync(dir, { recursive: true, force: true });
 * }
 * ```
 */
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
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CheckpointError, RNN, decodeCheckpoint, encodeCheckpoint } from 'bptt';
 *
 * const bytes = encodeCheckpoint(new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 }));
 * assert.equal(decodeCheckpoint(bytes).rnn.hiddenSize, 4);
 * assert.throws(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 1), {}, 'upload 17'), (err) => err instanceof CheckpointError && err.message.startsWith('upload 17'));
 * ```
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
  const hh = tensors.get(TORCH_NAMES.W) ?? fail(`missing tensor ${TORCH_NAMES.W}`);
  const fc = tensors.get(TORCH_NAMES.V) ?? fail(`missing tensor ${TORCH_NAMES.V}`);
  if (ih.shape.length !== 2 || hh.shape.length !== 2 || fc.shape.length !== 2) fail(`${TORCH_NAMES.U}, ${TORCH_NAMES.W} and ${TORCH_NAMES.V} must be matrices`);
  const model = metadata.model === undefined ? {} : parseObject(metadata.model, 'model', fail);
  const config = modelConfig(model, tensors, fail);
  const { H, D, K } = config;
  for (const [key, value] of [['inputSize', D], ['hiddenSize', H], ['outputSize', K]] as const) {
    if (model[key] !== undefined && model[key] !== value) fail(`metadata says ${key} ${JSON.stringify(model[key])} but the tensors have ${value}`);
  }
  const seed = typeof model.seed === 'number' && Number.isSafeInteger(model.seed) ? model.seed : 0;
  const backend = options.backend ?? defaultBackend((model.head as HeadSpec | undefined) ?? { kind: 'tokens' });
  const rnn = new RNN({
    inputSize: D,
    hiddenSize: H,
    outputSize: K,
    seed,
    backend,
    cell: config.cell,
    numLayers: config.numLayers,
    bidirectional: config.bidirectional,
    dropout: config.dropout,
    ...(model.head !== undefined ? { head: model.head as HeadSpec } : {}),
    ...(model.init !== undefined ? { init: model.init as InitKind } : {}),
  });
  made.push(rnn);
  if (Object.keys(rnn.params).includes('U')) {
    loadElmanParams(rnn, tensors, floatTensor, fail);
  } else {
    const values: Record<string, Float32Array> = {};
    for (const [name, p] of Object.entries(rnn.params)) values[name] = floatTensor(name, p.shape);
    rnn.setParams(values);
  }
  if (metadata.dropout_stream !== undefined) {
    if (!rnn.dropoutStream) fail('metadata dropout_stream is for a model with dropout');
    rnn.dropoutStream!.setState(parseRngState(metadata.dropout_stream, 'dropout_stream', fail));
  }

  let tokenizer: CharTokenizer | null = null;
  if (metadata.vocab !== undefined) {
    tokenizer = CharTokenizer.deserialize(metadata.vocab);
    if (tokenizer.vocabSize !== D || tokenizer.vocabSize !== K) fail(`vocabulary has ${tokenizer.vocabSize} characters but the model has ${D} inputs and ${K} outputs`);
    rnn.tokenizer = tokenizer;
  }
  return decodeTraining(rnn, tokenizer, metadata, tensors, floatTensor, fail, made);
}

/** The default model's U, W, b (PyTorch's two biases summed), V, c. */
function loadElmanParams(rnn: RNN, tensors: Map<string, RawTensor>, floatTensor: (name: string, shape: readonly number[] | null) => Float32Array, fail: (msg: string) => never): void {
  const H = rnn.hiddenSize;
  const D = rnn.inputSize;
  const K = rnn.outputSize;
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
  rnn.setParams({ U, W, b, V, c });
}

/** The model a checkpoint (or a PyTorch state_dict) holds: from its metadata, else from its tensors. */
function modelConfig(model: Record<string, unknown>, tensors: Map<string, RawTensor>, fail: (msg: string) => never) {
  const ih = tensors.get('rnn.weight_ih_l0')!;
  const hh = tensors.get('rnn.weight_hh_l0')!;
  const fc = tensors.get('fc.weight')!;
  const H = hh.shape[1];
  const D = ih.shape[1];
  const K = fc.shape[0];
  if (!(H >= 1 && D >= 1 && K >= 1)) fail(`model sizes must be positive, got hidden ${H}, input ${D}, output ${K}`);
  const gates = hh.shape[0] / H;
  let numLayers = 1;
  while (tensors.has(`rnn.weight_ih_l${numLayers}`)) numLayers++;
  const bidirectional = tensors.has('rnn.weight_ih_l0_reverse');
  const inferred = gates === 4 ? 'lstm' : gates === 3 ? 'gru' : gates === 1 ? (model.nonlinearity === 'relu' ? 'relu' : 'tanh') : fail(`rnn.weight_hh_l0 has ${hh.shape[0]} rows for hidden size ${H}: not 1, 3 or 4 gates`);
  const cell = model.cell ?? inferred;
  if (cell !== inferred) fail(`metadata says cell ${JSON.stringify(model.cell)} but the tensors hold a '${inferred}' cell`);
  if (model.nonlinearity !== undefined && model.nonlinearity !== 'tanh' && model.nonlinearity !== 'relu') fail(`unknown nonlinearity ${JSON.stringify(model.nonlinearity)}`);
  if (model.numLayers !== undefined && model.numLayers !== numLayers) fail(`metadata says numLayers ${JSON.stringify(model.numLayers)} but the tensors have ${numLayers} layers`);
  if (model.bidirectional !== undefined && model.bidirectional !== bidirectional) fail(`metadata says bidirectional ${JSON.stringify(model.bidirectional)} but the tensors ${bidirectional ? 'have' : 'have no'} reverse direction`);
  const dropout = model.dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) fail(`metadata dropout must be a number in [0, 1), got ${JSON.stringify(model.dropout)}`);
  return { H, D, K, cell: cell as CellKind, numLayers, bidirectional, dropout: dropout as number };
}

function parseRngState(text: string, key: string, fail: (msg: string) => never): Uint32Array {
  const words = parseJson(text, key, fail);
  if (!Array.isArray(words) || words.length !== 4 || !words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff) || words.every((w) => w === 0)) {
    fail(`${key} must be four uint32 words, not all zero`);
  }
  return Uint32Array.from(words as number[]);
}

/** The optimizer, trainer state and RNG a training checkpoint adds to its model. */
function decodeTraining(
  rnn: RNN,
  tokenizer: CharTokenizer | null,
  metadata: Record<string, string>,
  tensors: Map<string, RawTensor>,
  floatTensor: (name: string, shape: readonly number[] | null) => Float32Array,
  fail: (msg: string) => never,
  made: { dispose(): void }[],
): Checkpoint {
  let optimizer: Optimizer | null = null;
  if (metadata.optimizer !== undefined) {
    const o = parseObject(metadata.optimizer, 'optimizer', fail);
    if (typeof o.kind !== 'string' || !OPTIMIZER_KINDS.includes(o.kind as OptimizerKind)) fail(`unknown optimizer ${JSON.stringify(o.kind)}`);
    const num = (k: string): number | undefined => (typeof o[k] === 'number' ? (o[k] as number) : o[k] === undefined ? undefined : fail(`optimizer ${k} must be a number`));
    const opt = new Optimizer(rnn, { kind: o.kind as OptimizerKind, momentum: num('momentum'), beta1: num('beta1'), beta2: num('beta2'), eps: num('eps'), rho: num('rho') });
    made.push(opt);
    const state: Record<string, Float32Array> = {};
    for (const key of Object.keys(opt.state())) state[key] = floatTensor(`optim.${key}`, rnn.params[stateParameter(key)].shape);
    opt.loadState(state, num('step') ?? 0);
    optimizer = opt;
  }

  let training: TrainerState | null = null;
  if (metadata.training !== undefined) training = parseTraining(metadata.training, tensors, rnn, fail);

  let rng: Rng | null = null;
  if (metadata.rng !== undefined) {
    rng = new Rng();
    rng.setState(parseRngState(metadata.rng, 'rng', fail));
  }

  const hyperparameters = metadata.hyperparameters === undefined ? {} : parseObject(metadata.hyperparameters, 'hyperparameters', fail);
  const task = metadata.task === undefined ? null : parseObject(metadata.task, 'task', fail);
  if (task !== null && typeof task.kind !== 'string') fail('metadata task needs a kind');
  return { rnn, tokenizer, optimizer, training, rng, hyperparameters, task, metadata };
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

/** The parameter an optimizer state key (`${param}.${slot}`) belongs to; parameter names may hold dots. */
function stateParameter(key: string): string {
  return key.slice(0, key.lastIndexOf('.'));
}

function parseTraining(text: string, tensors: Map<string, RawTensor>, rnn: RNN, fail: (msg: string) => never): TrainerState {
  const t = parseObject(text, 'training', fail);
  const { step, k1, k2, historySteps, batch, data, clip, best, stale } = t;
  // k1 = k2 = 0: a trainer of whole sequences, which carries no state between batches.
  if (!isCount(step) || !isCount(k1) || !isCount(k2) || !isCount(historySteps) || !isCount(batch) || (k1 === 0 ? k2 !== 0 || historySteps !== 0 : k2 < k1)) {
    fail('metadata training needs integers step, k1, k2 >= k1 >= 1 (or k1 = k2 = 0), historySteps and batch');
  }
  if (best !== undefined && best !== null && (typeof best !== 'number' || !Number.isFinite(best))) fail('metadata training.best must be a finite number or null');
  if (stale !== undefined && !isCount(stale)) fail('metadata training.stale must be a count');
  let dataState: BatcherState | null = null;
  if (data !== null) {
    const d = data as Record<string, unknown>;
    if (typeof d !== 'object' || !isCount(d.position) || !isCount(d.epoch) || typeof d.started !== 'boolean') fail('metadata training.data must hold position, epoch and started');
    dataState = { position: d.position as number, epoch: d.epoch as number, started: d.started as boolean };
  }
  const c = clip as Record<string, unknown>;
  const clipKeys = ['steps', 'clippedSteps', 'fractionClipped', 'lastNorm', 'meanNorm', 'maxNorm'] as const;
  if (typeof c !== 'object' || c === null || !clipKeys.every((k) => typeof c[k] === 'number' && Number.isFinite(c[k]))) fail('metadata training.clip must hold the clipping statistics');
  const carried = (name: string): Float32Array | null => {
    const raw = tensors.get(name);
    if (!raw) return null;
    if (batch === 0) fail(`tensor ${name} is a carried state, but the training state has no batch`);
    const shape = rnn.stateShape(batch as number);
    if (raw.shape.length !== shape.length || raw.shape.some((n, i) => n !== shape[i])) fail(`tensor ${name} has shape [${raw.shape.join(', ')}], expected [${shape.join(', ')}]`);
    const v = toFloat32(raw, `tensor ${name}`);
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) fail(`tensor ${name}[${i}] is ${v[i]}`);
    return v;
  };
  const h = carried('train.h');
  const cState = carried('train.c');
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
    c: cState,
    historyInputs,
    historySteps: historySteps as number,
    best: (best as number | null | undefined) ?? null,
    stale: (stale as number | undefined) ?? 0,
  };
}

const nativeHeads = new Map<string, boolean>();

/**
 * The backend a model with this head runs on by default: native when the addon loads and runs the
 * head (probed once per head kind with a one-step model), else the reference backend.
 */
export function defaultBackend(head: HeadSpec): BackendName {
  if (!nativeAvailable()) return 'reference';
  if (head.kind === 'tokens') return 'native';
  let runs = nativeHeads.get(head.kind);
  if (runs === undefined) {
    const x = Tensor.from(new Float32Array(1), [1, 1, 1]);
    const y = head.kind === 'classify' ? Tensor.from(new Int32Array(1), [1]) : Tensor.from(new Float32Array(2), [1, 1, 2]);
    let probe: RNN | null = null;
    try {
      // Construction, prediction and training: a backend that runs only some of them is not the default.
      probe = new RNN({ inputSize: 1, hiddenSize: 1, outputSize: 2, cell: 'gru', head: { kind: head.kind } as HeadSpec, backend: 'native', seed: 1 });
      probe.predict(x).dispose();
      const r = probe.lossAndGradients(x, y);
      for (const t of [r.hT, r.cT, ...Object.values(r.grads)]) t?.dispose();
      runs = true;
    } catch {
      runs = false;
    } finally {
      x.dispose();
      y.dispose();
      probe?.dispose();
    }
    nativeHeads.set(head.kind, runs);
  }
  return runs ? 'native' : 'reference';
}
