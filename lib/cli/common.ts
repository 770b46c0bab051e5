/** What the `bptt` commands share: their I/O, errors, output checks and the progress display. */
import * as fs from 'fs';
import * as path from 'path';
import * as cliProgress from 'cli-progress';
import type { RNN } from '../rnn';
import type { StepInfo } from '../train/trainer';
import { Schedule, ScheduleKind, checkSchedule } from '../train/schedules';

export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
}

export interface CliOptions {
  /** Stops training after the current step, like Ctrl-C (which the CLI also listens for). */
  signal?: AbortSignal;
}


/**
 * How a training command stops: Ctrl-C (a second one quits at once) or the caller's signal aborts
 * `signal` after the current step, so the last good state gets saved. `release()` removes the
 * listeners when the run ends.
 */
export function interruption(io: CliIO, options: CliOptions): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const onSigint = (): void => {
    if (controller.signal.aborted) process.exit(130);
    io.stderr.write('\nbptt: interrupted, saving a checkpoint after the current step (Ctrl-C again to quit at once)\n');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  const stopOnSignal = (): void => controller.abort();
  options.signal?.addEventListener('abort', stopOnSignal);
  if (options.signal?.aborted) controller.abort();
  return {
    signal: controller.signal,
    release(): void {
      process.removeListener('SIGINT', onSigint);
      options.signal?.removeEventListener('abort', stopOnSignal);
    },
  };
}

/** An error to report as one line and exit 1. */
export class UsageError extends Error {}

/** A periodic save failed: the run stops there (saving the same state again would fail the same way). */
export class SaveError extends UsageError {}

export function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim();
}


/**
 * Refuses an output path whose directory is missing or not writable, or that is a directory,
 * before any training runs (a save that fails after hours of training loses them).
 */
export function checkOutput(out: string): void {
  const target = path.resolve(out);
  const dir = path.dirname(target);
  let isDir: boolean;
  try {
    isDir = fs.statSync(dir).isDirectory();
  } catch {
    throw new UsageError(`cannot write the checkpoint ${out}: the directory ${dir} does not exist`);
  }
  if (!isDir) throw new UsageError(`cannot write the checkpoint ${out}: ${dir} is not a directory`);
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch {
    throw new UsageError(`cannot write the checkpoint ${out}: the directory ${dir} is not writable`);
  }
  let existing: fs.Stats | undefined;
  try {
    existing = fs.statSync(target);
  } catch {
    existing = undefined; // a new file
  }
  if (existing?.isDirectory()) throw new UsageError(`cannot write the checkpoint ${out}: it is a directory`);
}


export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}


export interface Progress {
  update(info: StepInfo, done: number, total: number, smooth: number, tokensPerSecond: number, eta: number): void;
  log(text: string): void;
  stop(): void;
}

/** A cli-progress bar on a terminal, plain log lines (every `every` steps) otherwise. */
export function progress(io: CliIO, total: number): Progress {
  if (io.stdout.isTTY) {
    const multi = new cliProgress.MultiBar(
      {
        stream: io.stdout,
        format: '{bar} {value}/{total} loss {loss} smooth {smooth} {tps} tok/s ETA {eta}',
        hideCursor: true,
        gracefulExit: false,
        barsize: 16,
      },
      cliProgress.Presets.shades_classic,
    );
    const bar = multi.create(total, 0, { loss: '-', smooth: '-', tps: '-', eta: '-' });
    return {
      update: (info, done, _t, smooth, tps, eta) => bar.update(done, { loss: info.loss.toFixed(3), smooth: smooth.toFixed(3), tps: Math.round(tps), eta: formatDuration(eta) }),
      log: (text) => multi.log(`${text}\n`),
      stop: () => multi.stop(),
    };
  }
  const every = Math.max(1, Math.round(total / 20));
  return {
    update: (info, done, t, smooth, tps, eta) => {
      if (done % every === 0 || done === t) {
        io.stdout.write(`step ${info.step} (${done}/${t})  loss ${info.loss.toFixed(4)}  smooth ${smooth.toFixed(4)}  ${Math.round(tps)} tok/s  ETA ${formatDuration(eta)}  clipped ${(100 * info.clip.fractionClipped).toFixed(1)}%\n`);
      }
    },
    log: (text) => io.stdout.write(`${text}\n`),
    stop: () => undefined,
  };
}

/** "lstm, 2 layers, bidirectional, dropout 0.2, hidden": the model part of the run's summary line. */
export function describeModel(rnn: RNN): string {
  const parts: string[] = [rnn.cell];
  if (rnn.numLayers > 1) parts.push(`${rnn.numLayers} layers`);
  if (rnn.bidirectional) parts.push('bidirectional');
  if (rnn.dropout > 0) parts.push(`dropout ${rnn.dropout}`);
  return `${parts.join(', ')}, hidden`;
}


/**
 * The learning-rate schedule of --lr, --schedule, --warmup and --decay-steps for a run of `steps`
 * updates: cosine from lr to lr/10 over decaySteps (default the run), or steps of x0.3 every
 * decaySteps (default a third of the run), or constant.
 */
export function scheduleFromFlags(kind: ScheduleKind, lr: number, warmup: number, decaySteps: number | undefined, steps: number): Schedule {
  const schedule: Schedule =
    kind === 'cosine'
      ? { kind: 'cosine', lr, warmup, total: decaySteps ?? steps, minLr: lr / 10 }
      : kind === 'step'
        ? { kind: 'step', lr, every: decaySteps ?? Math.max(1, Math.round(steps / 3)), gamma: 0.3 }
        : { kind: 'constant', lr };
  checkSchedule(schedule);
  return schedule;
}
