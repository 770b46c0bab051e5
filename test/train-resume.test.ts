import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PARAM_NAMES } from '../lib/backend';
import { RNN } from '../lib/rnn';
import { Rng } from '../lib/rng';
import { StreamBatcher } from '../lib/train/batcher';
import { loadCheckpoint, saveCheckpoint } from '../lib/train/checkpoint';
import { sample } from '../lib/train/sample';
import { Schedule } from '../lib/train/schedules';
import { CharTokenizer } from '../lib/train/tokenizer';
import { Trainer, TrainerOptions } from '../lib/train/trainer';
import { OptimizerKind } from '../lib/optim';

const text = 'the quick brown fox jumps over the lazy dog\n'.repeat(3);
const tokenizer = CharTokenizer.fromText(text);

function bytes(rnn: RNN): Buffer {
  return Buffer.concat(PARAM_NAMES.map((n) => Buffer.from((rnn.params[n].toArray() as Float32Array).buffer)));
}

function stateBytes(t: Trainer): Buffer {
  const s = t.optimizer.state();
  return Buffer.concat(Object.keys(s).sort().map((k) => Buffer.from(s[k].buffer)));
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-resume-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('resume from a checkpoint', () => {
  const schedule: Schedule = { kind: 'cosine', lr: 0.01, warmup: 3, total: 20, minLr: 0.001 };
  const cases: [OptimizerKind, number, number][] = [
    ['adam', 4, 9],
    ['nesterov', 6, 6],
    ['adagrad', 3, 5],
  ];
  it.each(cases)('continues bit-identically (%s, k1=%d, k2=%d, across an epoch boundary)', async (kind, k1, k2) => {
    const settings = (): TrainerOptions => ({ optimizer: kind, lr: schedule, k1, k2, clipNorm: 0.5 });
    const B = 4;
    const N = 16;
    const tokens = tokenizer.encode(text);
    const fresh = () => new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 12, outputSize: tokenizer.vocabSize, seed: 9 });

    const a = fresh();
    const ta = new Trainer(a, settings());
    const dataA = new StreamBatcher(tokens, B);
    const rngA = new Rng(5);
    await ta.fit(dataA, { steps: N / 2 });
    const midSample = sample(a, { tokenizer, length: 10, rng: rngA });
    await ta.fit(dataA, { steps: N / 2 });
    expect(dataA.epoch).toBeGreaterThan(0);

    const b = fresh();
    const tb = new Trainer(b, settings());
    const rngB = new Rng(5);
    await tb.fit(new StreamBatcher(tokens, B), { steps: N / 2 });
    expect(sample(b, { tokenizer, length: 10, rng: rngB })).toBe(midSample);
    const file = path.join(dir, `${kind}.safetensors`);
    saveCheckpoint(file, b, { tokenizer, trainer: tb, rng: rngB, hyperparameters: { note: 'test' } });

    const ck = loadCheckpoint(file);
    expect(ck.hyperparameters).toEqual({ note: 'test' });
    expect(ck.tokenizer?.chars).toEqual(tokenizer.chars);
    expect(ck.optimizer?.step).toBe(N / 2);
    const tc = new Trainer(ck.rnn, { ...settings(), optimizer: ck.optimizer! });
    const dataC = new StreamBatcher(tokens, B);
    tc.loadState(ck.training!, dataC);
    expect(Array.from(ck.rng!.getState())).toEqual(Array.from(rngB.getState()));
    await tc.fit(dataC, { steps: N / 2 });

    expect(bytes(ck.rnn).equals(bytes(a))).toBe(true);
    expect(stateBytes(tc).equals(stateBytes(ta))).toBe(true);
    expect(tc.step).toBe(ta.step);
    expect(tc.clipStats).toEqual(ta.clipStats);
    expect(dataC.state()).toEqual(dataA.state());
  });

  it('onCheckpoint fires at multiples of the run step; a save made there resumes bit-identically', async () => {
    const tokens = tokenizer.encode(text);
    const settings = (): TrainerOptions => ({ optimizer: 'adam', lr: 0.01, k1: 3, k2: 5, clipNorm: 1 });
    const fresh = () => new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 10, outputSize: tokenizer.vocabSize, seed: 2 });
    const a = fresh();
    const ta = new Trainer(a, settings());
    const dataA = new StreamBatcher(tokens, 3);
    const file = path.join(dir, 'periodic.safetensors');
    const due: number[] = [];
    await ta.fit(dataA, { steps: 5 });
    await ta.fit(dataA, {
      steps: 9,
      checkpointEvery: 4,
      onCheckpoint: (info) => {
        due.push(info.step);
        if (info.step === 8) saveCheckpoint(file, a, { tokenizer, trainer: ta });
      },
    });
    expect(due).toEqual([8, 12]);

    const ck = loadCheckpoint(file);
    const tc = new Trainer(ck.rnn, { ...settings(), optimizer: ck.optimizer! });
    const dataC = new StreamBatcher(tokens, 3);
    tc.loadState(ck.training!, dataC);
    await tc.fit(dataC, { steps: 6 });
    expect(bytes(ck.rnn).equals(bytes(a))).toBe(true);
    expect(stateBytes(tc).equals(stateBytes(ta))).toBe(true);
  });

  it('checkpointEvery needs onCheckpoint, and both are checked before any update', async () => {
    const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 4, outputSize: tokenizer.vocabSize, seed: 1 });
    const t = new Trainer(rnn, { k1: 3 });
    const data = new StreamBatcher(tokenizer.encode(text), 2);
    await expect(t.fit(data, { steps: 2, checkpointEvery: 2 })).rejects.toThrow(TypeError);
    await expect(t.fit(data, { steps: 2, onCheckpoint: () => undefined })).rejects.toThrow(TypeError);
    await expect(t.fit(data, { steps: 2, checkpointEvery: 0, onCheckpoint: () => undefined })).rejects.toThrow(RangeError);
    expect(t.step).toBe(0);
  });
});
