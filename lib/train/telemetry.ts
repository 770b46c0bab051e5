/**
 * Training telemetry: one JSON object per line, written by the {@link Trainer} (option `log`,
 * `bptt train --log FILE.jsonl`) and read by the report. Records, in order: one `run` record
 * (what is trained and how), then an `update` record per update, a `profile` record every N
 * updates (per-lag gradient norms and spectral radii, when the CLI's `--log-every N` asks), and
 * a `validation` record after each validation.
 */
import * as fs from 'fs';
import type { RNN } from '../rnn';

/**
 * The first record of a run: the task, the model, the truncation and the optimizer.
 *
 * @example
 * ```ts
 * import type { RunRecord } from 'bptt';
 *
 * const r: RunRecord = { type: 'run', task: 'forecast', model: { cell: 'lstm', numLayers: 1, hiddenSize: 32, bidirectional: false }, truncate: null, k1: null, k2: null, optimizer: { kind: 'adam' }, seed: 1 };
 * console.log(JSON.stringify(r));
 * ```
 */
export interface RunRecord {
  type: 'run';
  task: string;
  model: { cell: string; numLayers: number; hiddenSize: number; bidirectional: boolean; [key: string]: unknown };
  /** Steps each gradient reaches back: k2 for TBPTT over streams, the `truncate` option for whole sequences, null for exact BPTT. */
  truncate: number | null;
  /** TBPTT's k1 and k2 (null for whole sequences). */
  k1: number | null;
  k2: number | null;
  optimizer: { kind: string; [key: string]: unknown };
  seed: number;
  [key: string]: unknown;
}

/**
 * One update: its loss, the gradient's global L2 norm before clipping, whether it was clipped and
 * by what factor (clipNorm / gradNorm when norm clipping applied, else 1), the learning rate.
 *
 * @example
 * ```ts
 * import type { UpdateRecord } from 'bptt';
 *
 * const r: UpdateRecord = { type: 'update', step: 12, loss: 1.93, gradNorm: 7.5, clipped: true, clipScale: 5 / 7.5, lr: 3e-3 };
 * console.log(r.clipScale);
 * ```
 */
export interface UpdateRecord {
  type: 'update';
  step: number;
  loss: number;
  gradNorm: number;
  clipped: boolean;
  clipScale: number;
  lr: number;
}

/**
 * Every N updates: the top layer's per-lag gradient norms (lag m = 0..T-1) and the spectral
 * radius of each recurrent block, from `diagnose()` on the update's batch.
 *
 * @example
 * ```ts
 * import type { ProfileRecord } from 'bptt';
 *
 * const r: ProfileRecord = { type: 'profile', step: 100, perLag: [0.5, 0.2, 0.05], spectralRadius: [0.93] };
 * console.log(r.perLag.length);
 * ```
 */
export interface ProfileRecord {
  type: 'profile';
  step: number;
  perLag: number[];
  spectralRadius: number[];
  [key: string]: unknown;
}

/**
 * After a validation: the step, the epoch (fractional when validating within an epoch) and every
 * metric measured.
 *
 * @example
 * ```ts
 * import type { ValidationRecord } from 'bptt';
 *
 * const r: ValidationRecord = { type: 'validation', step: 200, epoch: 1, metrics: { mae: 0.31, mase: 0.8 } };
 * console.log(r.metrics.mase);
 * ```
 */
export interface ValidationRecord {
  type: 'validation';
  step: number;
  epoch: number;
  metrics: Record<string, number | null>;
}

/**
 * A line of a telemetry file.
 *
 * @example
 * ```ts
 * import type { TelemetryRecord } from 'bptt';
 *
 * const lines = ['{"type":"update","step":1,"loss":2,"gradNorm":1,"clipped":false,"clipScale":1,"lr":0.001}'];
 * const records = lines.map((l) => JSON.parse(l) as TelemetryRecord);
 * console.log(records.filter((r) => r.type === 'update').length);
 * ```
 */
export type TelemetryRecord = RunRecord | UpdateRecord | ProfileRecord | ValidationRecord;

/**
 * Where a {@link Trainer} sends its telemetry records (option `log`).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CharTokenizer, RNN, StreamBatcher, Trainer, type TelemetryRecord, type TelemetryWriter } from 'bptt';
 *
 * const records: TelemetryRecord[] = [];
 * const log: TelemetryWriter = { write: (r) => void records.push(r) };
 * const text = 'hello world\n'.repeat(20);
 * const tokenizer = CharTokenizer.fromText(text);
 * const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 8, outputSize: tokenizer.vocabSize, seed: 1 });
 * await new Trainer(rnn, { k1: 8, log }).fit(new StreamBatcher(tokenizer.encode(text), 4), { steps: 3 });
 * assert.deepEqual(records.map((r) => r.type), ['run', 'update', 'update', 'update']);
 * ```
 */
export interface TelemetryWriter {
  write(record: TelemetryRecord): void;
}

/**
 * Telemetry to a JSONL file: each record one line, written at once (a killed run keeps every
 * line it wrote).
 *
 * @example
 * ```ts
 * import * as fs from 'node:fs';
 * import * as os from 'node:os';
 * import * as path from 'node:path';
 * import assert from 'node:assert/strict';
 * import { TelemetryLog, readTelemetry } from 'bptt';
 *
 * const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-'));
 * try {
 *   const file = path.join(dir, 'run.jsonl');
 *   const log = new TelemetryLog(file);
 *   log.write({ type: 'update', step: 1, loss: 2, gradNorm: 1, clipped: false, clipScale: 1, lr: 1e-3 });
 *   log.close();
 *   assert.equal(readTelemetry(file)[0].type, 'update');
 * } finally {
 *   fs.rmSync(dir, { recursive: true, force: true });
 * }
 * ```
 */
export class TelemetryLog implements TelemetryWriter {
  /** The file it writes. */
  readonly path: string;
  #fd: number | null;

  /**
   * Creates (or with `append`, extends) the file.
   *
   * @throws Error naming the file when it cannot be opened.
   */
  constructor(path: string, options: { append?: boolean } = {}) {
    this.path = path;
    try {
      this.#fd = fs.openSync(path, options.append ? 'a' : 'w');
    } catch (err) {
      throw new Error(`cannot write the telemetry log ${path}: ${(err as Error).message}`);
    }
  }

  /** Appends one record as a line; numbers that JSON cannot hold (NaN, Infinity) become null. */
  write(record: TelemetryRecord): void {
    if (this.#fd === null) throw new Error(`the telemetry log ${this.path} is closed`);
    fs.writeSync(this.#fd, `${JSON.stringify(record)}\n`);
  }

  /** Closes the file (writing afterwards is an Error). */
  close(): void {
    if (this.#fd !== null) fs.closeSync(this.#fd);
    this.#fd = null;
  }
}

/**
 * The records of a telemetry file, in order.
 *
 * @throws TypeError naming the line that is not a JSON object with a known `type`.
 *
 * @example
 * ```ts
 * import * as fs from 'node:fs';
 * import * as os from 'node:os';
 * import * as path from 'node:path';
 * import assert from 'node:assert/strict';
 * import { readTelemetry } from 'bptt';
 *
 * const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-'));
 * try {
 *   const file = path.join(dir, 'run.jsonl');
 *   fs.writeFileSync(file, '{"type":"validation","step":5,"epoch":1,"metrics":{"accuracy":0.8}}\n');
 *   assert.deepEqual(readTelemetry(file), [{ type: 'validation', step: 5, epoch: 1, metrics: { accuracy: 0.8 } }]);
 * } finally {
 *   fs.rmSync(dir, { recursive: true, force: true });
 * }
 * ```
 */
export function readTelemetry(path: string): TelemetryRecord[] {
  const lines = fs.readFileSync(path, 'utf8').split('\n');
  const out: TelemetryRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch (err) {
      throw new TypeError(`${path}: line ${i + 1} is not JSON: ${(err as Error).message}`);
    }
    const type = (r as { type?: unknown })?.type;
    if (typeof r !== 'object' || r === null || !['run', 'update', 'profile', 'validation'].includes(type as string)) {
      throw new TypeError(`${path}: line ${i + 1} is not a telemetry record (an object with type run, update, profile or validation)`);
    }
    out.push(r as TelemetryRecord);
  });
  return out;
}

/** The factor norm clipping applied to the gradient: clipNorm / gradNorm when it clipped, else 1. */
export function clipScale(gradNorm: number, clipped: boolean, clipNorm: number | undefined): number {
  return clipped && clipNorm !== undefined && gradNorm > clipNorm ? clipNorm / gradNorm : 1;
}

/** The model part of a run record. */
export function modelSummary(rnn: RNN): RunRecord['model'] {
  return {
    cell: rnn.cell,
    numLayers: rnn.numLayers,
    hiddenSize: rnn.hiddenSize,
    bidirectional: rnn.bidirectional,
    inputSize: rnn.inputSize,
    outputSize: rnn.outputSize,
    dropout: rnn.dropout,
    head: rnn.head,
    init: rnn.init,
  };
}
