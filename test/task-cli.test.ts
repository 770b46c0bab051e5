/**
 * `bptt train --task forecast|classify`, `eval` and `predict` end to end on small files, in process:
 * the JSON lines' fields, the checkpoint's PyTorch names and task metadata, eval over a whole file,
 * bad input (one-line errors, exit 1), telemetry, and resume.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { decodeSafetensors } from '../lib/train/safetensors';
import { loadCheckpoint } from '../lib/train/checkpoint';
import { readTelemetry } from '../lib/train/telemetry';

const run = runCli;

/** The one JSON line a --json command printed. */
function jsonLine(out: string): Record<string, unknown> {
  const lines = out.split('\n').filter((l) => l.trim() !== '');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]);
}

let dir: string;
let series: string;
let texts: string;
const W = 14;
const HORIZON = 3;
const ROWS = 240;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-task-'));
  // A weekly pattern with a slow trend and a little noise, and its day of week.
  series = path.join(dir, 'series.csv');
  let seed = 7;
  const noise = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 2;
  const rows = ['date,sales,dow'];
  for (let t = 0; t < ROWS; t++) rows.push(`d${t},${(100 + 20 * Math.sin((2 * Math.PI * t) / 7) + 0.05 * t + noise()).toFixed(3)},${(t % 7) + 1}`);
  fs.writeFileSync(series, `${rows.join('\n')}\n`);
  // Texts whose class is their letter.
  texts = path.join(dir, 'texts.jsonl');
  const lines: string[] = [];
  for (let i = 0; i < 120; i++) {
    const label = i % 3 === 0 ? 'b' : 'a';
    lines.push(JSON.stringify({ text: label.repeat(2 + (i % 5)) + 'xy'.slice(0, i % 3), label }));
  }
  fs.writeFileSync(texts, `${lines.join('\n')}\n`);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const small = ['--cell', 'gru', '--hidden', '8', '--seed', '3'];

describe('bptt train --task forecast', () => {
  const ck = () => path.join(dir, 'fc.safetensors');

  test('trains, prints the contract fields, writes PyTorch names and the task metadata; eval scores every window; predict forecasts', async () => {
    const log = path.join(dir, 'fc.jsonl');
    const t = await run('train', '--task', 'forecast', series, '--column', 'sales', '--covariates', 'dow:onehot', '--window', String(W), '--horizon', String(HORIZON), '--season', '7', ...small, '--epochs', '2', '--out', ck(), '--json', '--log', log, '--log-every', '5');
    expect(t.err).not.toMatch(/error/);
    expect(t.code).toBe(0);
    const fields = jsonLine(t.out);
    for (const k of ['mae', 'rmse', 'mase', 'naive_mae', 'seasonal_naive_mae']) expect(Number.isFinite(fields[k])).toBe(true);

    const { tensors, metadata } = decodeSafetensors(fs.readFileSync(ck()));
    expect(tensors.get('rnn.weight_ih_l0')!.shape).toEqual([3 * 8, 1 + 7]); // GRU gates; sales + 7 one-hot days
    expect(tensors.get('fc.weight')!.shape).toEqual([HORIZON, 8]);
    expect(tensors.get('fc.bias')!.shape).toEqual([HORIZON]);
    const task = JSON.parse(metadata.task);
    expect(task.kind).toBe('forecast');
    expect(task.pipeline).toMatchObject({ window: W, horizon: HORIZON, season: 7 });
    expect(task.pipeline.targets[0].column).toBe('sales');
    const loaded = loadCheckpoint(ck());
    expect(loaded.rnn.head).toEqual({ kind: 'regress', positions: 'last', loss: 'mse' });
    loaded.rnn.dispose();

    const e = await run('eval', ck(), series, '--json');
    expect(e.code).toBe(0);
    const ev = jsonLine(e.out);
    for (const k of ['mae', 'rmse', 'mase', 'naive_mae', 'seasonal_naive_mae']) expect(Number.isFinite(ev[k])).toBe(true);
    expect(ev.windows).toBe(ROWS - W - HORIZON + 1);

    const p = await run('predict', ck(), series, '--json');
    expect(p.code).toBe(0);
    const pred = jsonLine(p.out).predictions as { forecast: number[]; after_row: number }[];
    expect(pred[0].forecast).toHaveLength(HORIZON);
    expect(pred[0].after_row).toBe(ROWS);
    for (const v of pred[0].forecast) expect(v).toBeGreaterThan(50); // in the series' units, not normalised

    // Telemetry: the run record first, one update record per update, a validation per epoch.
    const records = readTelemetry(log);
    expect(records[0]).toMatchObject({ type: 'run', task: 'forecast', model: { cell: 'gru', numLayers: 1, hiddenSize: 8, bidirectional: false }, truncate: null });
    const updates = records.filter((r) => r.type === 'update');
    expect(updates.length).toBe(fields.steps);
    expect(updates.map((r) => r.step)).toEqual(Array.from({ length: updates.length }, (_, i) => i + 1));
    for (const u of updates) {
      if (u.type !== 'update') continue;
      expect(Number.isFinite(u.loss) && Number.isFinite(u.gradNorm)).toBe(true);
      expect(u.clipScale).toBe(u.clipped ? 5 / u.gradNorm : 1);
    }
    expect(records.filter((r) => r.type === 'validation').map((r) => (r as { epoch: number }).epoch)).toEqual([1, 2]);
    // Every 5 updates: the per-lag profile over the window's W steps, a spectral radius per GRU gate.
    const profiles = records.filter((r) => r.type === 'profile');
    expect(profiles.map((r) => r.step)).toEqual(Array.from({ length: Math.floor(updates.length / 5) }, (_, i) => 5 * (i + 1)));
    for (const p of profiles) {
      if (p.type !== 'profile') continue;
      expect(p.perLag).toHaveLength(W);
      expect(p.spectralRadius).toHaveLength(3);
      expect(p.perLag.every((v) => Number.isFinite(v) && v >= 0) && p.perLag[0] > 0).toBe(true);
    }
  });

  test('resume continues bit-identically', async () => {
    const flags = ['--task', 'forecast', series, '--column', 'sales', '--window', String(W), '--horizon', String(HORIZON), ...small, '--json'];
    const a = path.join(dir, 'a.safetensors');
    const b = path.join(dir, 'b.safetensors');
    expect((await run('train', ...flags, '--epochs', '3', '--out', a)).code).toBe(0);
    expect((await run('train', ...flags, '--epochs', '1', '--out', b)).code).toBe(0);
    const r = await run('train', ...flags, '--epochs', '2', '--out', b, '--resume', path.join(dir, 'b.last.safetensors'));
    expect(r.err).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const ta = decodeSafetensors(fs.readFileSync(path.join(dir, 'a.last.safetensors'))).tensors;
    const tb = decodeSafetensors(fs.readFileSync(path.join(dir, 'b.last.safetensors'))).tensors;
    expect([...tb.keys()].sort()).toEqual([...ta.keys()].sort());
    for (const [name, t] of ta) expect(Buffer.from(tb.get(name)!.bytes).equals(Buffer.from(t.bytes))).toBe(true);
  });

  test.each([
    ['a column that does not exist', ['--column', 'nope'], /no column "nope"/],
    ['a column that is not numeric', ['--column', 'date'], /"d0" is not a number/],
  ])('refuses %s in one line', async (_, flags, message) => {
    const r = await run('train', '--task', 'forecast', series, ...flags, '--window', '7', '--horizon', '2', ...small, '--epochs', '1', '--out', path.join(dir, 'bad.safetensors'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(message);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });

  test('a missing value is an error unless --fill says what to do', async () => {
    const gappy = path.join(dir, 'gappy.csv');
    const lines = fs.readFileSync(series, 'utf8').split('\n');
    lines[50] = lines[50].replace(/,[^,]*,/, ',NaN,');
    fs.writeFileSync(gappy, lines.join('\n'));
    const flags = ['--task', 'forecast', gappy, '--column', 'sales', '--window', '7', '--horizon', '2', ...small, '--epochs', '1', '--out', path.join(dir, 'gap.safetensors'), '--json'];
    const r = await run('train', ...flags);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/missing.*fill/);
    const filled = await run('train', ...flags, '--fill', 'previous');
    expect(filled.code).toBe(0);
    expect(Number.isFinite(jsonLine(filled.out).mae)).toBe(true);
  });

  test('an empty file is an error', async () => {
    const empty = path.join(dir, 'empty.csv');
    fs.writeFileSync(empty, '');
    const r = await run('train', '--task', 'forecast', empty, '--column', 'sales', '--window', '7', '--horizon', '2', ...small, '--out', path.join(dir, 'e.safetensors'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/empty/);
  });
});

describe('bptt train --task classify', () => {
  const ck = () => path.join(dir, 'cl.safetensors');

  test('trains, prints the contract fields; eval on a file; predict; a label unseen in training is a clear error', async () => {
    const log = path.join(dir, 'cl.jsonl');
    const t = await run('train', '--task', 'classify', texts, ...small, '--bidirectional', '--epochs', '3', '--schedule', 'cosine', '--lr', '0.01', '--out', ck(), '--json', '--log', log);
    expect(t.err).not.toMatch(/error/);
    expect(t.code).toBe(0);
    const fields = jsonLine(t.out);
    for (const k of ['accuracy', 'macro_f1', 'majority_accuracy']) expect(fields[k]).toBeGreaterThanOrEqual(0);
    // The cosine schedule over the run's steps: lr falls from 0.01 towards 0.001.
    const lrs = readTelemetry(log).flatMap((r) => (r.type === 'update' ? [r.lr] : []));
    expect(lrs[0]).toBeCloseTo(0.01, 12);
    expect(lrs.every((lr, i) => i === 0 || lr < lrs[i - 1])).toBe(true);
    expect(lrs[lrs.length - 1]).toBeGreaterThan(0.001);
    const { tensors, metadata } = decodeSafetensors(fs.readFileSync(ck()));
    expect(tensors.get('fc.weight')!.shape).toEqual([2, 2 * 8]);
    expect(tensors.has('rnn.weight_hh_l0_reverse')).toBe(true);
    const task = JSON.parse(metadata.task);
    expect(task).toMatchObject({ kind: 'classify', encoder: { kind: 'tokens', labels: ['a', 'b'] } });

    const e = await run('eval', ck(), texts, '--json');
    expect(e.code).toBe(0);
    const ev = jsonLine(e.out);
    expect(ev.examples).toBe(120);
    expect(ev.majority_accuracy).toBeCloseTo(80 / 120, 10);
    for (const k of ['accuracy', 'macro_f1']) expect(ev[k]).toBeGreaterThanOrEqual(0);

    const p = await run('predict', ck(), texts);
    expect(p.code).toBe(0);
    const rows = p.out.trim().split('\n').map((l) => JSON.parse(l));
    expect(rows).toHaveLength(120);
    for (const r of rows) {
      expect(['a', 'b']).toContain(r.label);
      expect(r.probabilities.a + r.probabilities.b).toBeCloseTo(1, 5);
    }

    const unseen = path.join(dir, 'unseen.jsonl');
    fs.writeFileSync(unseen, `${JSON.stringify({ text: 'aa', label: 'a' })}\n${JSON.stringify({ text: 'cc', label: 'c' })}\n`);
    const u = await run('eval', ck(), unseen, '--json');
    expect(u.code).toBe(1);
    expect(u.err).toMatch(/line 2.*"c" was not in the training data/);
  });

  test('--text-field and --label-field read other field names; a line that is not JSON is an error naming it', async () => {
    const renamed = path.join(dir, 'renamed.jsonl');
    const lines = fs.readFileSync(texts, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { text: string; label: string });
    fs.writeFileSync(renamed, lines.map((r) => JSON.stringify({ msg: r.text, y: r.label })).join('\n') + '\n');
    const out = path.join(dir, 'renamed.safetensors');
    const t = await run('train', '--task', 'classify', renamed, '--text-field', 'msg', '--label-field', 'y', ...small, '--epochs', '1', '--out', out, '--json');
    expect(t.code).toBe(0);
    expect(JSON.parse(decodeSafetensors(fs.readFileSync(out)).metadata.task).encoder.labels).toEqual(['a', 'b']);
    const p = await run('predict', out, renamed);
    expect(p.code).toBe(0);
    expect(p.out.trim().split('\n')).toHaveLength(lines.length);

    const broken = path.join(dir, 'broken.jsonl');
    fs.writeFileSync(broken, `${JSON.stringify({ msg: 'ab', y: 'a' })}\n\n{"msg": "ba",\n`);
    for (const argv of [['train', '--task', 'classify', broken, '--text-field', 'msg', '--label-field', 'y', ...small, '--out', path.join(dir, 'b.safetensors')], ['predict', out, broken]]) {
      const r = await run(...argv);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/broken\.jsonl: line 3: not valid JSON/);
    }
  });

  test('an empty file is an error', async () => {
    const empty = path.join(dir, 'empty.jsonl');
    fs.writeFileSync(empty, '');
    const r = await run('train', '--task', 'classify', empty, ...small, '--out', path.join(dir, 'e2.safetensors'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/no examples/);
  });
});

describe('bptt train --task lm (the default task)', () => {
  test('--json prints the held-out loss and perplexity; eval --json and predict read the checkpoint', async () => {
    const corpus = path.join(dir, 'tiny.txt');
    fs.writeFileSync(corpus, 'hello world\nthis is a tiny text file\n'.repeat(30));
    const ck = path.join(dir, 'lm.safetensors');
    const log = path.join(dir, 'lm.jsonl');
    const t = await run('train', corpus, '--hidden', '16', '--seq', '8', '--batch', '4', '--steps', '6', '--out', ck, '--json', '--log', log, '--log-every', '3');
    expect(t.code).toBe(0);
    const fields = jsonLine(t.out);
    expect(fields.perplexity).toBeCloseTo(Math.exp(fields.loss as number), 10);
    expect(readTelemetry(log).map((r) => r.type)).toEqual(['run', 'update', 'update', 'profile', 'update', 'update', 'update', 'profile', 'update']);
    expect(readTelemetry(log)[0]).toMatchObject({ task: 'lm', k1: 8, k2: 8, truncate: 8 });
    // Every 3 updates, before that update's record: the per-lag profile over the window's 8 steps
    // and the tanh model's one spectral radius.
    for (const p of readTelemetry(log).filter((r) => r.type === 'profile')) {
      if (p.type !== 'profile') continue;
      expect(p.perLag).toHaveLength(8);
      expect(p.perLag.every((v) => Number.isFinite(v) && v >= 0) && p.perLag[0] > 0).toBe(true);
      expect(p.spectralRadius).toHaveLength(1);
      expect(p.spectralRadius[0]).toBeGreaterThan(0);
    }
    expect(readTelemetry(log).filter((r) => r.type === 'profile').map((r) => r.step)).toEqual([3, 6]);
    const e = await run('eval', ck, corpus, '--json');
    expect(e.code).toBe(0);
    const ev = jsonLine(e.out);
    expect(ev.perplexity).toBeCloseTo(Math.exp(ev.loss as number), 10);
    expect(ev.loss).toBeGreaterThan(0);
    // bptt diagnose (Contract D's runDiagnose): one JSON line with Contract B's fields; the report.
    const d = await run('diagnose', ck, corpus, '--json', '--truncate', '2,4');
    expect(d.code).toBe(0);
    const diagnosis = jsonLine(d.out);
    expect((diagnosis.perLag as number[]).length).toBeGreaterThan(1);
    expect((diagnosis.spectralRadius as number[]).length).toBe(1);
    expect((diagnosis.truncationBias as { k: number }[]).map((e) => e.k)).toEqual(expect.arrayContaining([2, 4]));
    const html = path.join(dir, 'lm.html');
    expect((await run('diagnose', ck, corpus, '--log', log, '--out', html)).code).toBe(0);
    expect(fs.readFileSync(html, 'utf8')).toMatch(/<svg/);
    const p = await run('predict', ck, corpus, '--json');
    expect(p.code).toBe(0);
    const next = (jsonLine(p.out).predictions as { next: { char: string; probability: number }[] }[])[0].next;
    expect(next).toHaveLength(5);
    expect(next[0].probability).toBeGreaterThanOrEqual(next[4].probability);
  });
});

describe('bptt train --task adding|copy', () => {
  test.each([
    ['adding', ['--length', '12'], 'mse', 'baseline_mse', 1 / 6],
    ['copy', ['--length', '5'], 'loss', 'baseline_loss', (10 * Math.log(8)) / 25],
  ] as const)('--task %s prints the test metric and its baseline', async (task, flags, metric, baseline, value) => {
    const t = await run('train', '--task', task, ...flags, ...small, '--batch', '8', '--steps', '4', '--json', '--out', path.join(dir, `${task}.safetensors`));
    expect(t.err).not.toMatch(/error/);
    expect(t.code).toBe(0);
    const fields = jsonLine(t.out);
    expect(fields[metric]).toBeGreaterThan(0);
    expect(fields[baseline]).toBeCloseTo(value, 12);
    expect(fields.steps).toBe(4);
  });
});

describe('the embedded default tasks (no FILE)', () => {
  test('classify: first names → female/male beats the majority class clearly', async () => {
    const t = await run('train', '--task', 'classify', '--epochs', '2', '--out', path.join(dir, 'names.safetensors'), '--json');
    expect(t.code).toBe(0);
    const f = jsonLine(t.out);
    expect(f.accuracy as number).toBeGreaterThan((f.majority_accuracy as number) + 0.15);
    expect(f.macro_f1 as number).toBeGreaterThan(0.7);
  });

  test('forecast: US births, 14 days from 8 weeks, beats seasonal-naive MASE on 1988', async () => {
    const t = await run('train', '--task', 'forecast', '--out', path.join(dir, 'births.safetensors'), '--json');
    expect(t.code).toBe(0);
    const f = jsonLine(t.out);
    expect(f.windows).toBe(366 - 14 + 1);
    expect(f.mase as number).toBeLessThan(f.seasonal_naive_mase as number);
    expect(f.mae as number).toBeLessThan(f.seasonal_naive_mae as number);
  });
});
