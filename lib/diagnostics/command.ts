/**
 * `bptt diagnose CKPT [FILE] [--log F.jsonl] [--out report.html] [--json] [--truncate k,...]`:
 * loads a checkpoint, builds one batch of the data it was trained on (from FILE, or the task's
 * default data), runs diagnose() on it, prints the terminal summary (or, with --json, the
 * diagnosis as one JSON line) and writes the HTML report.
 */
import * as fs from 'fs';
import { loadCheckpoint, type Checkpoint } from '../train/checkpoint';
import { defaultNames, namesText } from '../train/data';
import { readTelemetry, type TelemetryRecord } from '../train/telemetry';
import { longRangeTask } from '../tasks/longrange';
import type { TaskDataBatch } from '../cli/task';
import { Tensor } from '../tensor';
import { checkSize } from '../backend';
import { diagnoseAsync, diagnosisToJson } from './diagnose';
import { renderReport, type ReportDiagnosis } from './report';
import { terminalSummary } from './terminal';

/**
 * Options of {@link runDiagnose}: the CLI's arguments.
 *
 * @example
 * ```ts
 * import type { DiagnoseCommandOptions } from 'bptt';
 *
 * const options: DiagnoseCommandOptions = { checkpoint: 'names.safetensors', out: 'report.html', truncate: [4, 16] };
 * console.log(options.checkpoint);
 * ```
 */
export interface DiagnoseCommandOptions {
  /** The checkpoint file. */
  checkpoint: string;
  /** Data as the task reads it: a text file for a language model, the labelled CSV/JSONL of a classifier, the series CSV of a forecaster (all of the file is sampled). Default: the task's default data: the first-name list for a language model, its test part for a classifier, the births series' test part for a forecaster, generated sequences for adding/copy. */
  file?: string;
  /** A training telemetry log (JSONL) for the training charts. */
  log?: string;
  /** Where to write the HTML report. */
  out?: string;
  /** Print the diagnosis as one JSON line instead of the summary. */
  json?: boolean;
  /** The truncation lengths k to measure the bias of (default: 1, 2, 4, ... below T, plus the run's k). */
  truncate?: number[];
  /** Sequences in the diagnosed batch (default 16): at most this many examples or windows of a classifier's or forecaster's data. */
  batch?: number;
  /** Steps per sequence of a language model's batch (default: the run's --seq, else 64). */
  steps?: number;
  /** Where the summary or the JSON line goes (default process.stdout). */
  stdout?: { write(text: string): unknown };
}

/** Inputs, the head's targets, lengths of padded sequences, and what they are in words. */
type DiagnosedBatch = TaskDataBatch;

/** The run's settings as the trainers save them (hyperparameters.run), when present: the LM trainer's seq and k2, a task run's truncate. */
function runSettings(ck: Checkpoint): { seq?: number; k2?: number; batch?: number; truncate?: number | null } {
  const run = ck.hyperparameters.run;
  return typeof run === 'object' && run !== null ? (run as { seq?: number; k2?: number; batch?: number; truncate?: number | null }) : {};
}

function readUtf8(file: string): string {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new TypeError(`${file} is not valid UTF-8 text`);
  }
}

/** B windows of T + 1 tokens spread evenly over the text: inputs are the first T, targets the next. */
function languageModelBatch(ck: Checkpoint, file: string | undefined, options: DiagnoseCommandOptions): DiagnosedBatch {
  if (ck.tokenizer === null) throw new TypeError(`${options.checkpoint} has no vocabulary: a language-model checkpoint needs one to read text`);
  const text = file === undefined ? namesText(defaultNames()) : readUtf8(file);
  const tokens = ck.tokenizer.encode(text, { skipUnknown: true });
  const B = options.batch ?? 16;
  const wanted = options.steps ?? runSettings(ck).seq ?? 64;
  const T = Math.min(wanted, Math.floor(tokens.length / B) - 1);
  if (T < 2) throw new RangeError(`${file ?? 'the default text'} has ${tokens.length} known characters: too few for ${B} sequences of at least 3`);
  const x = new Int32Array(T * B);
  const y = new Int32Array(T * B);
  const stride = Math.floor((tokens.length - T - 1) / Math.max(1, B - 1));
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      x[t * B + b] = tokens[b * stride + t];
      y[t * B + b] = tokens[b * stride + t + 1];
    }
  }
  return { inputs: Tensor.from(x, [T, B]), targets: Tensor.from(y, [T, B]), what: `${B} windows of ${T} characters of ${file ?? 'the first-name list'}` };
}

async function batchFor(ck: Checkpoint, options: DiagnoseCommandOptions): Promise<DiagnosedBatch> {
  const kind = ck.task === null ? 'lm' : String(ck.task.kind);
  if (kind === 'lm') return languageModelBatch(ck, options.file, options);
  if (kind === 'adding' || kind === 'copy') {
    if (options.file !== undefined) throw new RangeError(`the ${kind} task's data is generated: diagnose its checkpoint without a FILE (got ${options.file})`);
    const length = ck.task!.length;
    if (typeof length !== 'number') throw new TypeError(`${options.checkpoint}: the ${kind} task metadata has no length`);
    // a seed of its own: sequences that neither training nor the test set drew
    const b = longRangeTask(kind, { length, seed: 0x5eed }).batch(options.batch ?? 16);
    return { ...b, what: `${options.batch ?? 16} generated ${kind} sequences of ${b.inputs.shape[0]} steps` };
  }
  if (kind === 'classify' || kind === 'forecast') {
    // Loaded here, not at the top: the task readers live with the task CLI, and `import 'bptt'`
    // (which exports runDiagnose) should not load the CLI and its progress bar.
    const { taskDataBatch } = await import('../cli/task');
    return taskDataBatch(ck, options.file, options.batch ?? 16, options.checkpoint);
  }
  throw new RangeError(`bptt diagnose reads language-model, classify, forecast, adding and copy checkpoints; ${options.checkpoint} is a ${kind} model`);
}

/**
 * `bptt diagnose`: the gradient diagnosis of a checkpoint on one batch of its data, printed as a
 * terminal summary (or one JSON line, `diagnosisToJson`'s form, with `json`), and the HTML report
 * written to `out` (with the training charts when `log` names the run's telemetry).
 *
 * @throws CheckpointError for a checkpoint that cannot be loaded; RangeError/TypeError for data
 * the task cannot read or bad options; an Error naming the file when a file cannot be read or
 * written.
 *
 * @example
 * ```ts
 * import * as fs from 'node:fs';
 * import * as os from 'node:os';
 * import * as path from 'node:path';
 * import assert from 'node:assert/strict';
 * import { CharTokenizer, RNN, runDiagnose, saveCheckpoint } from 'bptt';
 *
 * const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-'));
 * try {
 *   const text = 'abcabcabd\n'.repeat(20);
 *   const tokenizer = CharTokenizer.fromText(text);
 *   const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 8, outputSize: tokenizer.vocabSize, seed: 1 });
 *   saveCheckpoint(path.join(dir, 'm.safetensors'), rnn, { tokenizer });
 *   fs.writeFileSync(path.join(dir, 'text.txt'), text);
 *   let line = '';
 *   await runDiagnose({ checkpoint: path.join(dir, 'm.safetensors'), file: path.join(dir, 'text.txt'), json: true, steps: 8, batch: 4, out: path.join(dir, 'r.html'), stdout: { write: (s: string) => (line += s) } });
 *   assert.equal(JSON.parse(line).perLag.length, 8);
 *   assert.ok(fs.readFileSync(path.join(dir, 'r.html'), 'utf8').includes('data-chart="per-lag"'));
 * } finally {
 *   fs.rmSync(dir, { recursive: true, force: true });
 * }
 * ```
 */
export async function runDiagnose(options: DiagnoseCommandOptions): Promise<void> {
  if (options === null || typeof options !== 'object' || typeof options.checkpoint !== 'string') throw new TypeError('runDiagnose expects { checkpoint: string, ... }');
  if (options.batch !== undefined) checkSize('batch', options.batch);
  if (options.steps !== undefined) checkSize('steps', options.steps, 2);
  if (options.truncate !== undefined && (!Array.isArray(options.truncate) || options.truncate.length === 0)) throw new RangeError('truncate must be a non-empty list of integers >= 1');
  options.truncate?.forEach((k) => checkSize('truncate k', k));
  const log: TelemetryRecord[] | null = options.log === undefined ? null : readTelemetry(options.log);
  const ck = loadCheckpoint(options.checkpoint);
  let batch: DiagnosedBatch;
  try {
    batch = await batchFor(ck, options);
  } catch (err) {
    ck.rnn.dispose();
    throw err;
  }
  try {
    const T = batch.inputs.shape[0];
    const run = log?.find((r) => r.type === 'run');
    const settings = runSettings(ck);
    const runK = typeof run?.truncate === 'number' ? run.truncate : (settings.k2 ?? settings.truncate ?? null);
    let ks = options.truncate;
    if (ks === undefined) {
      ks = [];
      for (let k = 1; k < T; k *= 2) ks.push(k);
      if (runK !== null && runK < T && !ks.includes(runK)) ks.push(runK);
      ks.sort((a, b) => a - b);
    }
    const diagnosis = await diagnoseAsync(ck.rnn, batch.inputs, batch.targets, { truncate: ks, ...(batch.lengths ? { lengths: batch.lengths } : {}) });
    const json = diagnosisToJson(diagnosis);
    const stdout = options.stdout ?? process.stdout;
    const checkpoint = { file: options.checkpoint, task: ck.task === null ? 'lm' : String(ck.task.kind), data: batch.what, model: { cell: ck.rnn.cell, numLayers: ck.rnn.numLayers, hiddenSize: ck.rnn.hiddenSize, bidirectional: ck.rnn.bidirectional } };
    const input = { diagnosis: json as ReportDiagnosis, log, checkpoint, truncate: runK };
    stdout.write(options.json ? `${JSON.stringify(json)}\n` : terminalSummary(input));
    if (options.out !== undefined) {
      const html = await renderReport({ ...input, title: `bptt diagnosis of ${options.checkpoint}` });
      try {
        fs.writeFileSync(options.out, html);
      } catch (err) {
        throw new Error(`cannot write the report ${options.out}: ${(err as Error).message}`);
      }
    }
  } finally {
    batch.inputs.dispose();
    batch.targets.dispose();
    ck.rnn.dispose();
  }
}
