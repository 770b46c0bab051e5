/**
 * The Trainer on whole sequences (an EpochBatcher): epochs, validation, early stopping that keeps
 * the best model, telemetry records, and a bit-identical resume from a mid-epoch state.
 */
import { Optimizer } from '../lib/optim';
import { RNN } from '../lib/rnn';
import { EpochBatcher, SequenceBatch } from '../lib/train/epochs';
import { TelemetryRecord } from '../lib/train/telemetry';
import { Trainer, Validation } from '../lib/train/trainer';
import { Rng } from '../lib/rng';

const V = 5;
const T = 6;
const B = 4;

/** Epoch e's batches: 3 batches of random token sequences (next-token targets), seeded by e. */
function epochBatches(e: number): SequenceBatch[] {
  const rng = new Rng(100 + e);
  return [0, 1, 2].map(() => {
    const x = Int32Array.from({ length: T * B }, () => rng.int(V));
    const y = Int32Array.from({ length: T * B }, (_, i) => (x[i] + 1) % V);
    return { inputs: { data: x, shape: [T, B] }, targets: { data: y, shape: [T, B] }, lengths: Int32Array.of(T, T - 1, 3, 1) };
  });
}

function model(): RNN {
  return new RNN({ inputSize: V, hiddenSize: 8, outputSize: V, cell: 'gru', seed: 5 });
}

describe('EpochBatcher', () => {
  test('walks epochs in order and restores mid-epoch', () => {
    const data = new EpochBatcher(epochBatches, 3);
    const seen = Array.from({ length: 7 }, () => data.next());
    expect(data.state()).toEqual({ position: 1, epoch: 2, started: true });
    expect(seen[3].inputs.data).toEqual(epochBatches(1)[0].inputs.data);
    const again = new EpochBatcher(epochBatches, 3);
    again.restore({ position: 2, epoch: 1, started: true });
    expect(again.next().inputs.data).toEqual(seen[5].inputs.data);
    expect(() => new EpochBatcher(() => [], 1).next()).toThrow(RangeError);
    expect(() => again.restore({ position: 4, epoch: 0, started: true })).toThrow(RangeError);
  });
});

describe('Trainer on whole sequences', () => {
  test('validates each epoch; early stopping stops after `patience` validations without improvement and keeps the best', async () => {
    const rnn = model();
    const trainer = new Trainer(rnn, { lr: 1e-2 });
    const scores = [3, 2, 2.5, 1.5, 4, 5, 6, 7];
    const improved: number[] = [];
    let calls = 0;
    const r = await trainer.fit(new EpochBatcher(epochBatches, 3), {
      epochs: 8,
      validate: (): Validation => ({ metric: scores[calls++], metrics: {} }),
      patience: 2,
      onImprove: (v, info) => void improved.push(info.step, v.metric),
    });
    // Validations after epochs 1..6: best 1.5 at epoch 4; epochs 5 and 6 are worse: stop.
    expect(calls).toBe(6);
    expect(r).toMatchObject({ steps: 18, stoppedEarly: true, aborted: false, best: 1.5 });
    expect(improved).toEqual([3, 3, 6, 2, 12, 1.5]);
    expect(trainer.state()).toMatchObject({ best: 1.5, stale: 2, k1: 0, k2: 0 });
    trainer.dispose();
    trainer.optimizer.dispose();
    rnn.dispose();
  });

  test('writes a run record, one update record per update and a validation record per validation', async () => {
    const rnn = model();
    const records: TelemetryRecord[] = [];
    const trainer = new Trainer(rnn, { lr: 1e-2, clipNorm: 0.5, truncate: 3, log: { write: (r) => void records.push(r) }, task: 'demo' });
    await trainer.fit(new EpochBatcher(epochBatches, 3), { epochs: 2, validate: () => ({ metric: 1, metrics: { loss: 1 } }) });
    expect(records[0]).toMatchObject({ type: 'run', task: 'demo', truncate: 3, k1: null, k2: null, optimizer: { kind: 'adam' }, seed: 5 });
    expect(records.slice(1).map((r) => r.type)).toEqual(['update', 'update', 'update', 'validation', 'update', 'update', 'update', 'validation']);
    for (const r of records) {
      if (r.type !== 'update') continue;
      expect(r.clipScale).toBe(r.gradNorm > 0.5 ? 0.5 / r.gradNorm : 1);
      expect(r.clipped).toBe(r.gradNorm > 0.5);
    }
    expect(records[4]).toEqual({ type: 'validation', step: 3, epoch: 1, metrics: { loss: 1 } });
    trainer.dispose();
    trainer.optimizer.dispose();
    rnn.dispose();
  });

  test('resumes bit-identically from a state taken mid-epoch', async () => {
    const a = model();
    const ta = new Trainer(a, { lr: 1e-2, clipNorm: 1 });
    const da = new EpochBatcher(epochBatches, 3);
    await ta.fit(da, { steps: 4 }); // epoch 1, one batch in
    const b = model();
    b.setParams(a.params);
    const optimizer = new Optimizer(b, { kind: 'adam' });
    optimizer.loadState(ta.optimizer.state(), ta.optimizer.step);
    const tb = new Trainer(b, { lr: 1e-2, clipNorm: 1, optimizer });
    const db = new EpochBatcher(epochBatches, 3);
    tb.loadState(ta.state(), db);
    expect(db.state()).toEqual({ position: 1, epoch: 1, started: true });
    const losses: number[][] = [[], []];
    await ta.fit(da, { steps: 5, onStep: (i) => void losses[0].push(i.loss) });
    await tb.fit(db, { steps: 5, onStep: (i) => void losses[1].push(i.loss) });
    expect(losses[1]).toEqual(losses[0]);
    for (const name of Object.keys(a.params)) expect(b.params[name].toArray()).toEqual(a.params[name].toArray());
    for (const t of [ta, tb]) {
      t.dispose();
      t.optimizer.dispose();
    }
    a.dispose();
    b.dispose();
  });

  test('refuses a StreamBatcher without k1, and patience without validate', async () => {
    const rnn = model();
    const trainer = new Trainer(rnn, {});
    await expect(trainer.fit(new EpochBatcher(epochBatches, 3), { steps: 1, patience: 2 })).rejects.toThrow(TypeError);
    trainer.optimizer.dispose();
    rnn.dispose();
  });
});
