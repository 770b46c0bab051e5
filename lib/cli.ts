#!/usr/bin/env node
/**
 * The `bptt` command: train a recurrent model for a task (a character-level language model on a
 * text file or the embedded first-name lists, the default; a sequence classifier; a forecaster;
 * the adding and copy problems: lib/cli/task.ts), sample from a language model, evaluate a
 * checkpoint on a file and predict with it.
 *
 * main(argv) runs in-process and returns the exit code, so tests can drive it without spawning.
 */
import { isUtf8 } from 'buffer';
import { createHash, randomInt } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { setNumThreads } from './index';
import { OPTIMIZER_KINDS, OptimizerKind, STATE_SLOTS } from './optim';
import { Rng } from './rng';
import { nativeAvailable } from './native';
import { CELL_KINDS, CellKind, gatesPerCell } from './engine/spec';
import { BackendName, RNN } from './rnn';
import { StreamBatcher, holdoutSplit } from './train/batcher';
import { Checkpoint, loadCheckpoint, saveCheckpoint } from './train/checkpoint';
import { defaultNames, namesText, shuffled } from './train/data';
import { EvalResult, evaluate } from './train/evaluate';
import { sample } from './train/sample';
import { Schedule, checkSchedule } from './train/schedules';
import { CharTokenizer } from './train/tokenizer';
import { StepInfo, Trainer } from './train/trainer';
import { CliIO, CliOptions, SaveError, UsageError, checkOutput, describeModel, formatDuration, interruption, oneLine, progress, scheduleFromFlags } from './cli/common';
import { TASKS, TaskKind, TaskTrainFlags, evalTask, predictTask, trainTask, writePredictions } from './cli/task';
import { FILL_POLICIES, FillPolicy } from './tasks/series';
import { nextTokenProbabilities } from './train/evaluate';
import { runDiagnose } from './diagnostics/command';
import { runStudy } from './study';

export type { CliIO, CliOptions } from './cli/common';

/** Settings of a training run, saved in the checkpoint so --resume continues the same run. */
/** The recurrent stack of a run (absent in checkpoints of runs before it existed: the default model). */
interface ModelSettings {
  cell: CellKind;
  layers: number;
  bidirectional: boolean;
  dropout: number;
}

const DEFAULT_MODEL: ModelSettings = { cell: 'tanh', layers: 1, bidirectional: false, dropout: 0 };

interface RunSettings {
  model?: ModelSettings;
  hidden: number;
  seq: number;
  batch: number;
  k1: number;
  k2: number;
  clip: number | null;
  clipValue: number | null;
  optim: OptimizerKind;
  schedule: Schedule;
  seed: number;
  holdout: number;
  /** The training text: where it came from, its hash, and how its bytes were decoded (absent: utf8). */
  data: { source: string; sha256: string; encoding?: TextEncoding };
}

/** How the CLI decodes text files. */
const TEXT_ENCODINGS = ['utf8', 'utf16le', 'latin1'] as const;
type TextEncoding = (typeof TEXT_ENCODINGS)[number];

/** Options that define a run; on --resume they come from the checkpoint. */
const RUN_OPTIONS = ['cell', 'layers', 'bidirectional', 'dropout', 'hidden', 'seq', 'batch', 'k1', 'k2', 'clip', 'clipValue', 'optim', 'lr', 'schedule', 'warmup', 'decaySteps', 'seed', 'holdout'] as const;

const DEFAULT_DATA = 'default: English first names (@stdlib)';
const SAMPLE_TEMPERATURE = 0.8;

function integer(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`must be an integer >= ${min}.`);
    return n;
  };
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number.');
  return n;
}

function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number >= 0.');
  return n;
}

function dropoutFraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0 && n < 1)) throw new InvalidArgumentError('must be a number in [0, 1).');
  return n;
}

function integerList(value: string): number[] {
  const parts = value.split(',').map((p) => p.trim());
  if (parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1)) throw new InvalidArgumentError('must be integers >= 1, comma-separated.');
  return parts.map(Number);
}

function fractionOrZero(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0 && n < 1)) throw new InvalidArgumentError('must be a number in [0, 1).');
  return n;
}

function fraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n < 1)) throw new InvalidArgumentError('must be a number between 0 and 1.');
  return n;
}

/** The run settings stored in a checkpoint, or null when they are missing or malformed. */
function runSettings(v: unknown): RunSettings | null {
  if (typeof v !== 'object' || v === null) return null;
  const r = v as Record<string, unknown>;
  const count = (k: string): boolean => typeof r[k] === 'number' && Number.isSafeInteger(r[k]) && (r[k] as number) >= 1;
  const optional = (k: string): boolean => r[k] === null || (typeof r[k] === 'number' && (r[k] as number) > 0);
  const data = r.data as Record<string, unknown> | null;
  const ok =
    ['hidden', 'seq', 'batch', 'k1', 'k2'].every(count) &&
    optional('clip') &&
    optional('clipValue') &&
    OPTIMIZER_KINDS.includes(r.optim as OptimizerKind) &&
    typeof r.seed === 'number' &&
    Number.isSafeInteger(r.seed) &&
    typeof r.holdout === 'number' &&
    r.holdout > 0 &&
    r.holdout < 1 &&
    typeof data === 'object' &&
    data !== null &&
    typeof data.source === 'string' &&
    typeof data.sha256 === 'string' &&
    (data.encoding === undefined || TEXT_ENCODINGS.includes(data.encoding as TextEncoding));
  const m = r.model as Record<string, unknown> | undefined;
  const modelOk =
    m === undefined ||
    (typeof m === 'object' &&
      m !== null &&
      CELL_KINDS.includes(m.cell as CellKind) &&
      typeof m.layers === 'number' &&
      Number.isSafeInteger(m.layers) &&
      m.layers >= 1 &&
      typeof m.bidirectional === 'boolean' &&
      typeof m.dropout === 'number' &&
      m.dropout >= 0 &&
      m.dropout < 1);
  if (!ok || !modelOk) return null;
  try {
    checkSchedule(r.schedule as Schedule);
  } catch {
    return null;
  }
  return r as unknown as RunSettings;
}

/**
 * Reads a text file in `encoding`. Bytes that are not valid in it are an error, not replacement
 * characters to train on; Latin-1 decodes any bytes.
 */
function readText(file: string, encoding: TextEncoding): string {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let text: string;
  if (encoding === 'latin1') {
    text = bytes.toString('latin1');
  } else if (encoding === 'utf8') {
    if (!isUtf8(bytes)) {
      const at = invalidUtf8Offset(bytes);
      throw new UsageError(`${file} is not valid UTF-8${at >= 0 ? ` (byte ${at} is 0x${bytes[at].toString(16).padStart(2, '0')})` : ''}; pass --encoding latin1 to read it as Latin-1, or --encoding utf16le`);
    }
    text = bytes.toString('utf8');
  } else {
    try {
      text = new TextDecoder('utf-16le', { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
      throw new UsageError(`${file} is not valid UTF-16LE; pass --encoding utf8 or latin1`);
    }
  }
  if (text.length === 0) throw new UsageError(`${file} is empty`);
  return text;
}

/** Offset of the first byte that is not part of valid UTF-8, or -1 (for the error message). */
function invalidUtf8Offset(bytes: Buffer): number {
  // Decoding replaces each invalid sequence by U+FFFD; the first one not spelled EF BF BD in the
  // file is where the bytes went wrong (everything before it decoded as written).
  const text = bytes.toString('utf8');
  let offset = 0;
  let from = 0;
  for (let i = text.indexOf('\uFFFD'); i >= 0; i = text.indexOf('\uFFFD', i + 1)) {
    offset += Buffer.byteLength(text.slice(from, i), 'utf8');
    from = i;
    if (bytes[offset] !== 0xef || bytes[offset + 1] !== 0xbf || bytes[offset + 2] !== 0xbd) return offset;
  }
  return -1;
}

/**
 * A lower bound of the memory a training run of this size holds at once: the parameters, their
 * gradients, the optimizer's state slots, the packed recurrent weight, one step's states and
 * logits, and, while a checkpoint is written, a copy of parameters and state plus the encoded file.
 * Refusing runs that cannot fit in the machine's memory turns what would be an allocation failure
 * (or the OOM killer) mid-run into an error before anything runs.
 */
function trainingBytes(vocab: number, hidden: number, model: ModelSettings, slots: number, steps: number, batch: number): number {
  const G = gatesPerCell(model.cell);
  const dirs = model.bidirectional ? 2 : 1;
  // Every layer's input and recurrent weights with their biases, and the head.
  const first = G * hidden * (vocab + hidden + 2);
  const above = G * hidden * (dirs * hidden + hidden + 2);
  const params = dirs * (first + (model.layers - 1) * above) + vocab * dirs * hidden + vocab;
  const floats = params * (2 + slots) + G * hidden * hidden + steps * batch * (model.layers * dirs * G * hidden + vocab) + 2 * params * (1 + slots);
  return 4 * floats;
}

function gigabytes(bytes: number): string {
  return `${(bytes / 1e9).toFixed(1)} GB`;
}

function formatNames(text: string): string {
  return text
    .split('\n')
    .filter((n) => n.length > 0)
    .join(', ');
}

/** Names from a sample, starting after a line break so the first one is whole, that are not in `known`. */
function newNames(rnn: RNN, tokenizer: CharTokenizer, known: ReadonlySet<string>, count: number, rng: Rng): string[] {
  const found = new Set<string>();
  for (let tries = 0; tries < 20 && found.size < count; tries++) {
    const text = sample(rnn, { tokenizer, prime: '\n', length: 400, temperature: SAMPLE_TEMPERATURE, rng });
    const lines = text.split('\n');
    lines.pop(); // the last one may be cut off
    for (const name of lines) if (name.length > 1 && !known.has(name) && found.size < count) found.add(name);
  }
  return [...found];
}

/** The flags of `bptt train`: a task run's (TaskTrainFlags) and the language model's own. */
interface TrainFlags extends TaskTrainFlags {
  seq: number;
  k1?: number;
  k2?: number;
  threads?: number;
  holdout: number;
  sampleEvery?: number;
  evalEvery?: number;
  saveEvery?: number;
  encoding?: TextEncoding;
  task: TaskKind;
}

async function train(file: string | undefined, flags: TrainFlags, given: (name: string) => boolean, io: CliIO, options: CliOptions): Promise<number> {
  if (flags.threads !== undefined) setNumThreads(flags.threads);
  if (flags.task !== 'lm') return trainTask(flags.task, file, flags, given, io, options);
  const json = flags.json === true;
  // With --json, stdout carries the one JSON line; everything else goes to stderr.
  const out_ = io;
  if (json) io = { stdout: io.stderr, stderr: io.stderr };
  const out = flags.out ?? (file === undefined ? 'names.safetensors' : `${path.basename(file).replace(/\.[^.]*$/, '') || 'model'}.safetensors`);
  checkOutput(out);
  const resumed: Checkpoint | null = flags.resume ? loadCheckpoint(flags.resume) : null;
  let settings: RunSettings;
  if (resumed) {
    const saved = runSettings(resumed.hyperparameters.run);
    if (!saved || !resumed.tokenizer || !resumed.optimizer || !resumed.training) throw new UsageError(`${flags.resume} is not a training checkpoint of this CLI (no valid run settings, vocabulary, optimizer or training state)`);
    if (resumed.training.step !== resumed.optimizer.step) {
      throw new UsageError(`${flags.resume} is inconsistent: its training state is at step ${resumed.training.step} but its optimizer at step ${resumed.optimizer.step}`);
    }
    const clash = RUN_OPTIONS.find((name) => given(name));
    if (clash) throw new UsageError(`--${clash.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} cannot be changed on --resume: the run's settings come from the checkpoint`);
    settings = saved;
  } else {
    const k1 = flags.k1 ?? flags.seq;
    const k2 = flags.k2 ?? Math.max(k1, flags.seq);
    if (k2 < k1) throw new UsageError(`--k2 (${k2}) must be >= --k1 (${k1})`);
    const lr = flags.lr;
    const schedule = scheduleFromFlags(flags.schedule, lr, flags.warmup, flags.decaySteps, flags.steps);
    settings = {
      model: { cell: flags.cell, layers: flags.layers, bidirectional: flags.bidirectional ?? false, dropout: flags.dropout },
      hidden: flags.hidden,
      seq: flags.seq,
      batch: flags.batch,
      k1,
      k2,
      clip: flags.clip ? flags.clip : null,
      clipValue: flags.clipValue ?? null,
      optim: flags.optim,
      schedule,
      seed: flags.seed,
      holdout: flags.holdout,
      data: { source: '', sha256: '' },
    };
  }

  // Data. The default names are shuffled with the run's seed so the held-out names are a random sample.
  const encoding = flags.encoding ?? settings.data.encoding ?? 'utf8';
  let text: string;
  let known: Set<string> | null = null;
  if (file === undefined) {
    const names = defaultNames();
    known = new Set(names);
    text = namesText(shuffled(names, settings.seed));
  } else {
    text = readText(file, encoding);
  }
  const source = file === undefined ? DEFAULT_DATA : path.resolve(file);
  const sha256 = createHash('sha256').update(text).digest('hex');
  const tokenizer = resumed?.tokenizer ?? CharTokenizer.fromText(text);
  const { train: trainText, valid: validText } = holdoutSplit(text, settings.holdout);
  let trainTokens: Int32Array;
  try {
    trainTokens = tokenizer.encode(trainText);
  } catch (err) {
    throw new UsageError(`${file ?? 'the data'} has characters the checkpoint's vocabulary lacks: ${(err as Error).message}`);
  }
  const validTokens = tokenizer.encode(validText, { skipUnknown: true });
  const data = new StreamBatcher(trainTokens, settings.batch);
  if (data.streamLength < settings.k1) {
    throw new UsageError(`the training text (${trainTokens.length} characters in ${settings.batch} streams of ${data.streamLength}) is too short for --k1 ${settings.k1}; use a smaller --batch or --k1`);
  }

  if (!resumed) {
    const need = trainingBytes(tokenizer.vocabSize, settings.hidden, settings.model ?? DEFAULT_MODEL, STATE_SLOTS[settings.optim].length, settings.k2, settings.batch);
    if (need > os.totalmem()) {
      throw new UsageError(
        `--hidden ${settings.hidden} with a vocabulary of ${tokenizer.vocabSize} needs at least ${gigabytes(need)} (parameters, gradients, ${settings.optim} state, a checkpoint being written); this machine has ${gigabytes(os.totalmem())}`,
      );
    }
  }

  let backend: BackendName = 'native';
  if (!nativeAvailable()) {
    backend = 'reference';
    io.stderr.write('bptt: note: the native addon did not load; training on the (slow) pure-TS reference backend\n');
  }
  const model = settings.model ?? DEFAULT_MODEL;
  const rnn =
    resumed?.rnn ??
    new RNN({
      inputSize: tokenizer.vocabSize,
      hiddenSize: settings.hidden,
      outputSize: tokenizer.vocabSize,
      seed: settings.seed,
      backend,
      cell: model.cell,
      numLayers: model.layers,
      bidirectional: model.bidirectional,
      dropout: model.dropout,
    });
  if (rnn.bidirectional) {
    io.stderr.write(
      'bptt: note: a bidirectional language model reads each window both ways from zero states; its reverse direction sees the characters it predicts, so its loss is not a language model\'s and it cannot sample\n',
    );
  }
  rnn.tokenizer = tokenizer;
  const trainer = new Trainer(rnn, {
    optimizer: resumed?.optimizer ?? settings.optim,
    lr: settings.schedule,
    k1: settings.k1,
    k2: settings.k2,
    ...(settings.clip !== null ? { clipNorm: settings.clip } : {}),
    ...(settings.clipValue !== null ? { clipValue: settings.clipValue } : {}),
    ...(flags.log !== undefined ? { log: flags.log, ...(flags.logEvery !== undefined ? { logEvery: flags.logEvery } : {}) } : {}),
    task: 'lm',
    seed: settings.seed,
  });
  const rng = resumed?.rng ?? new Rng(settings.seed + 1);
  if (resumed?.training) {
    const sameData = settings.data.sha256 === sha256;
    if (!sameData) io.stderr.write(`bptt: note: the training text differs from the checkpoint's; starting from the beginning of the new text\n`);
    trainer.loadState(sameData ? resumed.training : { ...resumed.training, data: null, h: null, c: null, historyInputs: new Int32Array(0), historySteps: 0 }, data);
  }
  settings = { ...settings, data: { source, sha256, ...(encoding !== 'utf8' ? { encoding } : {}) } };
  const save = (): void => saveCheckpoint(out, rnn, { tokenizer, trainer, rng, hyperparameters: { run: settings }, task: { kind: 'lm' } });
  const validate = (): EvalResult | null => (validTokens.length >= 2 ? evaluate(rnn, validTokens, { batch: settings.batch, seq: 64 }) : null);
  // One line, so it reads well between progress lines: names as a list, other text JSON-quoted.
  const showSample = (): string => {
    if (rnn.bidirectional) return '(a bidirectional model cannot sample)';
    const s = sample(rnn, { tokenizer, length: known ? 200 : 120, temperature: SAMPLE_TEMPERATURE, rng });
    return known ? formatNames(s) : JSON.stringify(s);
  };

  const stop = interruption(io, options);

  const steps = flags.epochs !== undefined && !given('steps') ? flags.epochs * data.chunksPerEpoch(settings.k1) : flags.steps;
  io.stdout.write(
    `training on ${file ?? DEFAULT_DATA}: ${trainTokens.length} training and ${validTokens.length} held-out characters, vocabulary ${tokenizer.vocabSize}; ` +
      `${describeModel(rnn)} ${settings.hidden}, batch ${settings.batch}, TBPTT(k1=${settings.k1}, k2=${settings.k2}), ${settings.optim}, lr ${settings.schedule.lr}${settings.schedule.kind === 'constant' ? '' : ` (${settings.schedule.kind})`}` +
      `${settings.clip !== null ? `, clip ${settings.clip}` : ''}${settings.clipValue !== null ? `, clip-value ${settings.clipValue}` : ''}; ` +
      `${resumed ? `resuming at step ${trainer.step}, ` : ''}${steps} steps\n`,
  );
  const sampleEvery = flags.sampleEvery ?? Math.max(1, Math.round(steps / 4));
  const evalEvery = flags.evalEvery ?? Math.max(1, Math.round(steps / 4));
  const bar = progress(io, steps);
  const started = performance.now();
  let smooth = 0;
  let seen = 0;
  let done = 0;
  const startStep = trainer.step;
  let result;
  try {
    result = await trainer.fit(data, {
      steps,
      signal: stop.signal,
      ...(flags.saveEvery !== undefined
        ? {
            checkpointEvery: flags.saveEvery,
            onCheckpoint: (info: StepInfo) => {
              try {
                save();
              } catch (err) {
                throw new SaveError(`${(err as Error).message}; the run stopped after step ${info.step}, ${out} is as it was before this save`);
              }
              bar.log(`checkpoint saved to ${out} at step ${info.step}`);
            },
          }
        : {}),
      onStep: (info) => {
        done++;
        seen++;
        smooth = 0.95 * smooth + 0.05 * info.loss;
        const elapsed = (performance.now() - started) / 1000;
        bar.update(info, done, steps, smooth / (1 - 0.95 ** seen), (done * info.tokens) / elapsed, ((steps - done) * elapsed) / done);
        if (done < steps && done % evalEvery === 0) {
          const v = validate();
          if (v) bar.log(`step ${info.step}: held-out loss ${v.loss.toFixed(4)}, perplexity ${v.perplexity.toFixed(2)}`);
        }
        if (done < steps && done % sampleEvery === 0) bar.log(`sample at step ${info.step}: ${showSample()}`);
      },
    });
  } catch (err) {
    // The trainer and the model are as they were after the last update that succeeded (a failed
    // update changes nothing), so that state is saved rather than lost with the error.
    const message = err instanceof Error ? err.message : String(err);
    if (trainer.step === startStep || err instanceof SaveError) throw err;
    try {
      save();
    } catch (saveErr) {
      throw new UsageError(`${message} (saving the last good state, step ${trainer.step}, to ${out} failed too: ${(saveErr as Error).message})`);
    }
    throw new UsageError(`${message} (the last good state, step ${trainer.step}, was saved to ${out})`);
  } finally {
    bar.stop();
    stop.release();
  }
  save();
  const clip = trainer.clipStats;
  io.stdout.write(
    `${result.aborted ? 'stopped' : 'done'} after ${result.steps} steps (step ${trainer.step} in all) in ${formatDuration(result.seconds)}, ` +
      `${Math.round(result.tokens / Math.max(result.seconds, 1e-9))} tok/s; last loss ${result.loss.toFixed(4)}; ` +
      `gradient clipped on ${(100 * clip.fractionClipped).toFixed(1)}% of steps (mean pre-clip norm ${clip.meanNorm.toFixed(3)})\n`,
  );
  const v = validate();
  if (v) io.stdout.write(`held-out loss ${v.loss.toFixed(4)} nats/char, perplexity ${v.perplexity.toFixed(3)} (${v.tokens} characters)\n`);
  io.stdout.write(`checkpoint saved to ${out}\n`);
  trainer.dispose();
  if (json) out_.stdout.write(`${JSON.stringify({ task: 'lm', loss: v?.loss ?? null, perplexity: v?.perplexity ?? null, tokens: v?.tokens ?? 0, steps: trainer.step, checkpoint: out })}\n`);
  if (result.aborted) return 130;
  if (rnn.bidirectional) return 0;
  if (known) {
    const names = newNames(rnn, tokenizer, known, 20, rng);
    io.stdout.write(`new names, not in the training list:\n${names.join(', ')}\n`);
  } else {
    io.stdout.write(`sample:\n${sample(rnn, { tokenizer, length: 300, temperature: SAMPLE_TEMPERATURE, rng })}\n`);
  }
  return 0;
}

function requireTokenizer(ck: Checkpoint, file: string): CharTokenizer {
  if (!ck.tokenizer) throw new UsageError(`${file} has no vocabulary (a checkpoint written by \`bptt train\` has one)`);
  return ck.tokenizer;
}

interface SampleFlags {
  length: number;
  temperature: number;
  topK?: number;
  prime?: string;
  seed?: number;
}

function sampleCommand(file: string, flags: SampleFlags, io: CliIO): number {
  const ck = loadCheckpoint(file);
  const tokenizer = requireTokenizer(ck, file);
  const prime = flags.prime;
  if (prime !== undefined) {
    const unknown = [...prime].find((ch) => !tokenizer.has(ch));
    if (unknown !== undefined) throw new UsageError(`--prime has ${JSON.stringify(unknown)}, which is not in the model's vocabulary`);
  }
  const text = sample(ck.rnn, {
    tokenizer,
    length: flags.length,
    temperature: flags.temperature,
    seed: flags.seed ?? randomInt(2 ** 31),
    ...(prime !== undefined && prime !== '' ? { prime } : {}),
    ...(flags.topK !== undefined ? { topK: flags.topK } : {}),
  });
  io.stdout.write(`${prime ?? ''}${text}\n`);
  return 0;
}

interface EvalFlags {
  encoding: TextEncoding;
  backend?: BackendName;
  json?: boolean;
  fill?: FillPolicy;
  out?: string;
}

async function evalCommand(checkpoint: string, file: string, flags: EvalFlags, io: CliIO): Promise<number> {
  const ck = loadCheckpoint(checkpoint, flags.backend ? { backend: flags.backend } : {});
  if (ck.task && ck.task.kind !== 'lm') return evalTask(ck, checkpoint, file, flags, io);
  const tokenizer = requireTokenizer(ck, checkpoint);
  const text = readText(file, flags.encoding);
  const tokens = tokenizer.encode(text, { skipUnknown: true });
  const skipped = [...text].length - tokens.length;
  if (tokens.length < 2) throw new UsageError(`${file} has fewer than 2 characters in the model's vocabulary`);
  const r = evaluate(ck.rnn, tokens);
  if (flags.json) {
    io.stdout.write(`${JSON.stringify({ task: 'lm', loss: r.loss, perplexity: r.perplexity, bits_per_char: r.loss / Math.LN2, tokens: r.tokens, skipped })}\n`);
    return 0;
  }
  io.stdout.write(`loss ${r.loss.toFixed(4)} nats/char (${(r.loss / Math.LN2).toFixed(4)} bits/char), perplexity ${r.perplexity.toFixed(3)}, ${r.tokens} characters predicted${skipped > 0 ? `, ${skipped} characters outside the vocabulary skipped` : ''}\n`);
  return 0;
}

/** `bptt predict` of a language model: the most likely next characters after the file's text. */
async function predictCommand(checkpoint: string, file: string, flags: EvalFlags, io: CliIO): Promise<number> {
  const ck = loadCheckpoint(checkpoint, flags.backend ? { backend: flags.backend } : {});
  if (ck.task && ck.task.kind !== 'lm') return predictTask(ck, checkpoint, file, flags, io);
  const tokenizer = requireTokenizer(ck, checkpoint);
  const tokens = tokenizer.encode(readText(file, flags.encoding), { skipUnknown: true });
  if (tokens.length < 1) throw new UsageError(`${file} has no characters in the model's vocabulary`);
  const probs = nextTokenProbabilities(ck.rnn, tokens);
  const top = Array.from(probs, (p, id) => ({ id, p }))
    .sort((a, b) => b.p - a.p)
    .slice(0, 5)
    .map(({ id, p }) => ({ char: tokenizer.decode(Int32Array.of(id)), probability: p }));
  writePredictions([{ next: top }], flags, io);
  return 0;
}

/** Runs the CLI with `argv` (the arguments after the program name) and returns the exit code. */
export async function main(argv: readonly string[], io: CliIO = { stdout: process.stdout, stderr: process.stderr }, options: CliOptions = {}): Promise<number> {
  let code = 0;
  const program = new Command('bptt')
    .description('Train recurrent networks (language models, sequence classifiers, forecasters) with backpropagation through time')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s), outputError: (s, write) => write(`bptt: ${s}`) })
    .showSuggestionAfterError(false)
    .allowExcessArguments(false);

  const trainCmd = program
    .command('train')
    .description('train a model for --task on FILE (default: the task\'s embedded data set) and save a checkpoint')
    .argument('[file]', 'text file to train on (UTF-8 unless --encoding says otherwise)')
    .addOption(new Option('--cell <kind>', 'recurrent cell').choices(CELL_KINDS as string[]).default('tanh'))
    .option('--layers <n>', 'stacked recurrent layers', integer(1), 1)
    .option('--bidirectional', 'read each window both ways (not a language model: see the note it prints)')
    .option('--dropout <p>', 'dropout between stacked layers in training, in [0, 1)', dropoutFraction, 0)
    .option('--hidden <n>', 'hidden units', integer(1), 128)
    .option('--seq <n>', 'steps per chunk: the default for --k1 (and --k2)', integer(1), 32)
    .option('--batch <n>', 'parallel streams per step', integer(1), 32)
    .option('--k1 <n>', 'TBPTT: new steps per update (default --seq)', integer(1))
    .option('--k2 <n>', 'TBPTT: steps backpropagated through per update, >= k1 (default max(k1, --seq))', integer(1))
    .option('--clip <g>', 'rescale the gradient to this global L2 norm when larger (0: off)', nonNegativeNumber, 5)
    .option('--clip-value <v>', 'clamp each gradient element to [-v, v]', positiveNumber)
    .addOption(new Option('--optim <kind>', 'optimizer').choices(OPTIMIZER_KINDS as string[]).default('adam'))
    .option('--lr <x>', 'learning rate', positiveNumber, 3e-3)
    .addOption(new Option('--schedule <kind>', 'learning-rate schedule').choices(['constant', 'step', 'cosine']).default('constant'))
    .option('--warmup <n>', 'cosine schedule: warm-up steps', integer(0), 0)
    .option('--decay-steps <n>', 'cosine: steps to decay over (default --steps); step: steps between decays', integer(1))
    .option('--steps <n>', 'updates to run (more updates on --resume)', integer(0), 800)
    .option('--threads <n>', 'native worker threads (default: all cores)', integer(1))
    .option('--seed <n>', 'seed for initialisation and data order', integer(0), 1)
    .option('--holdout <f>', 'fraction of the text held out for evaluation', fraction, 0.1)
    .option('--sample-every <n>', 'print a sample every n steps (default: 4 times a run)', integer(1))
    .option('--eval-every <n>', 'print the held-out loss every n steps (default: 4 times a run)', integer(1))
    .option('--save-every <n>', 'also write the checkpoint (atomically) every n updates, so a killed run loses fewer', integer(1))
    .addOption(new Option('--encoding <name>', 'encoding of FILE (default utf8, or the one the resumed run used)').choices(TEXT_ENCODINGS as unknown as string[]))
    .option('--out <path>', 'checkpoint to write (default: <FILE name>.safetensors, or names.safetensors; <task>.safetensors for other tasks)')
    .addOption(new Option('--task <kind>', 'what to train: a language model on text, a sequence classifier, a forecaster, or a long-range problem').choices(TASKS as unknown as string[]).default('lm'))
    .option('--epochs <n>', 'passes over the training data (instead of --steps)', integer(1))
    .option('--patience <n>', 'stop after n validations without improvement (classify, forecast)', integer(1))
    .option('--truncate <k>', 'classify, forecast: backpropagate each step through at most k steps (default: the whole sequence)', integer(1))
    .addOption(new Option('--init <kind>', 'initialisation of the recurrent weights').choices(['pytorch', 'orthogonal', 'identity']))
    .option('--json', 'print the final metrics as one JSON line (everything else goes to stderr)')
    .addOption(new Option('--backend <name>', 'classify, forecast: native (default when the addon loads) or the float64-checked reference').choices(['native', 'reference']))
    .option('--log <file>', 'write training telemetry (JSON lines: run, update, profile, validation records)')
    .option('--log-every <n>', 'with --log: a gradient profile record every n updates', integer(1))
    .option('--column <name>', 'forecast: the column to forecast')
    .option('--covariates <list>', 'forecast: more input columns, comma-separated (name or name:onehot)')
    .option('--window <w>', 'forecast: past steps the model reads', integer(1))
    .option('--horizon <n>', 'forecast: steps ahead to forecast', integer(1))
    .option('--season <s>', 'forecast: steps per season, for the seasonal-naive baseline and MASE (default 1)', integer(1))
    .addOption(new Option('--fill <policy>', 'forecast: missing values (default none: an error)').choices(FILL_POLICIES as unknown as string[]))
    .option('--validation <f>', 'classify, forecast: fraction held out for validation', fractionOrZero, undefined)
    .option('--test <f>', 'classify, forecast: fraction held out for the test metrics', fractionOrZero, undefined)
    .option('--text-field <name>', 'classify: the field (JSONL) or column (CSV) holding the text', 'text')
    .option('--label-field <name>', 'classify: the field or column holding the label', 'label')
    .addOption(new Option('--tokenize <mode>', 'classify: characters or words').choices(['char', 'word']).default('char'))
    .option('--lowercase', 'classify: lower-case the text first')
    .option('--length <t>', 'adding: sequence length; copy: the delay', integer(1))
    .option('--resume <path>', 'continue the run saved in this checkpoint')
    .action(async (file: string | undefined, flags: TrainFlags) => {
      const given = (name: string): boolean => trainCmd.getOptionValueSource(name) === 'cli';
      code = await train(file, flags, given, io, options);
    });

  program
    .command('sample')
    .description('generate text from a checkpoint')
    .argument('<checkpoint>', 'checkpoint written by `bptt train`')
    .option('--length <n>', 'characters to generate', integer(0), 200)
    .option('--temperature <t>', 'softmax temperature (0: always the most likely character)', nonNegativeNumber, 1)
    .option('--top-k <k>', 'draw among the k most likely characters only', integer(1))
    .option('--prime <text>', 'text to start from')
    .option('--seed <n>', 'seed of the sampler (default: random)', integer(0))
    .action((file: string, flags: SampleFlags) => {
      code = sampleCommand(file, flags, io);
    });

  program
    .command('eval')
    .description("a checkpoint's metrics on the whole of FILE, with its task's baseline (lm: loss and perplexity)")
    .argument('<checkpoint>', 'checkpoint written by `bptt train`')
    .argument('<file>', 'text file (UTF-8 unless --encoding says otherwise)')
    .addOption(new Option('--encoding <name>', 'encoding of FILE').choices(TEXT_ENCODINGS as unknown as string[]).default('utf8'))
    .option('--json', 'print the metrics as one JSON line')
    .addOption(new Option('--backend <name>', 'native (default when the addon loads) or reference').choices(['native', 'reference']))
    .addOption(new Option('--fill <policy>', 'forecast: missing values in FILE (default: the policy of the training run)').choices(FILL_POLICIES as unknown as string[]))
    .action(async (checkpoint: string, file: string, flags: EvalFlags) => {
      code = await evalCommand(checkpoint, file, flags, io);
    });

  program
    .command('predict')
    .description("a checkpoint's predictions for FILE: classes with probabilities (classify), the next horizon values after the file's end (forecast), the next character (lm)")
    .argument('<checkpoint>', 'checkpoint written by `bptt train`')
    .argument('<file>', 'data as the task reads it (JSONL/CSV of texts, a CSV series, a text file)')
    .option('--json', 'print every prediction in one JSON line')
    .option('--out <path>', 'write the predictions (JSON lines) to this file')
    .addOption(new Option('--backend <name>', 'native (default when the addon loads) or reference').choices(['native', 'reference']))
    .addOption(new Option('--encoding <name>', 'lm: encoding of FILE').choices(TEXT_ENCODINGS as unknown as string[]).default('utf8'))
    .addOption(new Option('--fill <policy>', 'forecast: missing values in FILE (default: the policy of the training run)').choices(FILL_POLICIES as unknown as string[]))
    .action(async (checkpoint: string, file: string, flags: EvalFlags) => {
      code = await predictCommand(checkpoint, file, flags, io);
    });

  program
    .command('diagnose')
    .description("a checkpoint's gradient diagnostics (per-lag gradient norms, Jacobian products, spectral radii, truncation bias) on FILE or the task's default data: a terminal summary, one JSON line, an HTML report")
    .argument('<checkpoint>', 'checkpoint written by `bptt train`')
    .argument('[file]', "data as the task reads it (default: the task's default data)")
    .option('--log <file>', 'the training telemetry (bptt train --log) for the report\'s training charts')
    .option('--out <path>', 'write the self-contained HTML report here')
    .option('--json', 'print the diagnosis as one JSON line')
    .option('--truncate <list>', 'the truncation lengths k to measure the bias of, comma-separated (default 1, 2, 4, ... and the run\'s k)', integerList)
    .option('--batch <n>', 'sequences in the diagnosed batch', integer(1))
    .option('--steps <n>', 'language models: steps per sequence', integer(1))
    .action(async (checkpoint: string, file: string | undefined, flags: { log?: string; out?: string; json?: boolean; truncate?: number[]; batch?: number; steps?: number }) => {
      if (flags.out !== undefined) checkOutput(flags.out);
      await runDiagnose({ checkpoint, ...(file !== undefined ? { file } : {}), ...flags, stdout: io.stdout });
    });

  program
    .command('study')
    .description('the BPTT study (adding problem for tanh/IRNN/LSTM/GRU, per-lag gradient profiles, truncation bias, clipping): study.md, study.html, study.json')
    .option('--out <dir>', 'folder to write the results to', 'study')
    .option('--quick', 'the small version (under 2 minutes)')
    .action(async (flags: { out: string; quick?: boolean }) => {
      await runStudy({ out: flags.out, quick: flags.quick === true, progress: (line) => io.stdout.write(`${line}\n`) });
      io.stdout.write(`study written to ${flags.out}/study.md, study.html and study.json\n`);
    });

  try {
    if (argv.length === 0) throw new UsageError('missing command: train, sample, eval, predict, diagnose or study (see bptt --help)');
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    io.stderr.write(`bptt: error: ${oneLine(err instanceof Error ? err.message : String(err))}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`bptt: error: ${oneLine(String(err))}\n`);
      process.exitCode = 1;
    },
  );
}
