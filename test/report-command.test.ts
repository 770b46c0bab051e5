/**
 * runDiagnose (what `bptt diagnose` runs): the JSON line is diagnose()'s JSON of the batch the
 * command documents (rebuilt here independently), the report file is written with the training
 * charts when a log is given, the run's k joins the truncation list, and bad inputs are typed
 * errors that write nothing.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runDiagnose } from '../lib/diagnostics/command';
import { diagnose, diagnosisToJson } from '../lib/diagnostics/diagnose';
import { RNN } from '../lib/rnn';
import { Tensor } from '../lib/tensor';
import { CharTokenizer } from '../lib/train/tokenizer';
import { saveCheckpoint } from '../lib/train/checkpoint';
import { CheckpointError } from '../lib/errors';
import { fullLog } from './helpers/report-fixtures';

let dir: string;
let ckpt: string;
let textFile: string;
const text = 'the quick brown fox jumps over the lazy dog\n'.repeat(10);
const tokenizer = CharTokenizer.fromText(text);

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-diagnose-cmd-'));
  const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 12, outputSize: tokenizer.vocabSize, cell: 'gru', numLayers: 2, seed: 3 });
  ckpt = path.join(dir, 'm.safetensors');
  saveCheckpoint(ckpt, rnn, { tokenizer, hyperparameters: { run: { seq: 10, k2: 6, batch: 4 } } });
  textFile = path.join(dir, 'text.txt');
  fs.writeFileSync(textFile, text);
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function capture(): { out: { write(s: string): void }; text: () => string } {
  let s = '';
  return { out: { write: (t: string) => void (s += t) }, text: () => s };
}

test('--json prints diagnose()\'s JSON of B evenly spread windows of the run\'s --seq, the run\'s k included', async () => {
  const c = capture();
  await runDiagnose({ checkpoint: ckpt, file: textFile, json: true, batch: 4, stdout: c.out });
  const lines = c.text().split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  const got = JSON.parse(lines[0]);
  // the batch, rebuilt: 4 windows of 10 (+1) tokens, evenly spaced
  const tokens = tokenizer.encode(text);
  const T = 10;
  const B = 4;
  const stride = Math.floor((tokens.length - T - 1) / (B - 1));
  const x = new Int32Array(T * B);
  const y = new Int32Array(T * B);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) [x[t * B + b], y[t * B + b]] = [tokens[b * stride + t], tokens[b * stride + t + 1]];
  const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 12, outputSize: tokenizer.vocabSize, cell: 'gru', numLayers: 2, seed: 3 });
  const want = diagnosisToJson(diagnose(rnn, Tensor.from(x, [T, B]), Tensor.from(y, [T, B]), { truncate: [1, 2, 4, 6, 8] }));
  expect(got.truncationBias.map((e: { k: number }) => e.k)).toEqual([1, 2, 4, 6, 8]);
  expect(got.perLag).toEqual(want.perLag);
  expect(got.truncationBias).toEqual(want.truncationBias);
  expect(got.spectralRadius).toEqual(want.spectralRadius);
});

test('without --json: the terminal summary; --out writes the report, with training charts from --log', async () => {
  const logFile = path.join(dir, 'run.jsonl');
  fs.writeFileSync(logFile, fullLog(120, 6).map((r) => JSON.stringify(r)).join('\n') + '\n');
  const out = path.join(dir, 'report.html');
  const c = capture();
  await runDiagnose({ checkpoint: ckpt, file: textFile, log: logFile, out, truncate: [3, 6], batch: 2, stdout: c.out });
  expect(c.text()).toMatch(/^checkpoint +.*m\.safetensors$/m);
  expect(c.text()).toMatch(/^diagnosed on +2 windows of 10 characters of /m);
  expect(c.text()).toMatch(/\(this run\) +6 /);
  const html = fs.readFileSync(out, 'utf8');
  for (const id of ['loss', 'grad-norm', 'clip-rate', 'per-lag', 'jacobian', 'truncation-bias', 'spectral-radius']) expect(html).toContain(`data-chart="${id}"`);
  expect(html).toContain('this run: k = 6');
});

test('the default data of a language model is the first-name list', async () => {
  const names = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n');
  const file = path.join(dir, 'names.safetensors');
  saveCheckpoint(file, new RNN({ inputSize: names.vocabSize, hiddenSize: 8, outputSize: names.vocabSize, seed: 1 }), { tokenizer: names });
  const c = capture();
  await runDiagnose({ checkpoint: file, batch: 3, steps: 12, stdout: c.out });
  expect(c.text()).toMatch(/^diagnosed on +3 windows of 12 characters of the first-name list$/m);
});

test('adding and copy checkpoints are diagnosed on generated sequences of their length', async () => {
  const adding = path.join(dir, 'adding.safetensors');
  saveCheckpoint(adding, new RNN({ inputSize: 2, hiddenSize: 6, outputSize: 1, cell: 'lstm', head: { kind: 'regress', positions: 'last' }, seed: 1 }), { task: { kind: 'adding', length: 12 } });
  const c = capture();
  await runDiagnose({ checkpoint: adding, json: true, batch: 3, stdout: c.out });
  const got = JSON.parse(c.text());
  expect(got.perLag).toHaveLength(12);
  expect(got.truncationBias.map((e: { k: number }) => e.k)).toEqual([1, 2, 4, 8]);
  expect(got.spectralRadius).toHaveLength(4); // the LSTM's four gate blocks
  const copy = path.join(dir, 'copy.safetensors');
  saveCheckpoint(copy, new RNN({ inputSize: 10, hiddenSize: 6, outputSize: 9, cell: 'gru', seed: 1 }), { task: { kind: 'copy', length: 5 } });
  const c2 = capture();
  await runDiagnose({ checkpoint: copy, batch: 2, stdout: c2.out });
  expect(c2.text()).toMatch(/^diagnosed on +2 generated copy sequences of 25 steps$/m);
  await expect(runDiagnose({ checkpoint: adding, file: textFile })).rejects.toThrow(/generated/);
});

test('bad inputs are typed errors and write no report', async () => {
  const out = path.join(dir, 'never.html');
  await expect(runDiagnose({ checkpoint: path.join(dir, 'missing.safetensors'), out })).rejects.toThrow(CheckpointError);
  await expect(runDiagnose({ checkpoint: ckpt, file: path.join(dir, 'missing.txt'), out })).rejects.toThrow(/cannot read .*missing\.txt/);
  fs.writeFileSync(path.join(dir, 'bad.txt'), Buffer.from([0x61, 0xff, 0x62]));
  await expect(runDiagnose({ checkpoint: ckpt, file: path.join(dir, 'bad.txt'), out })).rejects.toThrow(/not valid UTF-8/);
  fs.writeFileSync(path.join(dir, 'short.txt'), 'the');
  await expect(runDiagnose({ checkpoint: ckpt, file: path.join(dir, 'short.txt'), out })).rejects.toThrow(RangeError);
  await expect(runDiagnose({ checkpoint: ckpt, file: textFile, truncate: [0], out })).rejects.toThrow(RangeError);
  await expect(runDiagnose({ checkpoint: ckpt, file: textFile, log: path.join(dir, 'nolog.jsonl'), out })).rejects.toThrow(/nolog\.jsonl/);
  expect(fs.existsSync(out)).toBe(false);
});
