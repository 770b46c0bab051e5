/**
 * Checkpoints of task models: the head, the initialisation and the task metadata come back from
 * loadCheckpoint, with the trainer state of a whole-sequence run (k1 = k2 = 0, best metric, stale
 * count); malformed task or training metadata is a CheckpointError.
 */
import { CheckpointError } from '../lib/errors';
import { RNN } from '../lib/rnn';
import { decodeCheckpoint, encodeCheckpoint } from '../lib/train/checkpoint';
import { EpochBatcher, SequenceBatch } from '../lib/train/epochs';
import { decodeSafetensors, encodeSafetensors } from '../lib/train/safetensors';
import { Trainer } from '../lib/train/trainer';

const T = 5;
const B = 3;

function batches(e: number): SequenceBatch[] {
  return [0, 1].map((i) => ({
    inputs: { data: Float32Array.from({ length: T * B * 2 }, (_, j) => Math.sin(j + 10 * e + i)), shape: [T, B, 2] },
    targets: { data: Int32Array.of(0, 1, (e + i) % 3), shape: [B] },
    lengths: Int32Array.of(T, 2, 4),
  }));
}

/** The checkpoint with one metadata entry replaced. */
function withMetadata(bytes: Buffer, key: string, value: string): Buffer {
  const { metadata, tensors } = decodeSafetensors(bytes);
  const writable = new Map([...tensors].map(([name, t]) => [name, { shape: t.shape, data: new Float32Array(t.bytes.buffer.slice(t.bytes.byteOffset, t.bytes.byteOffset + t.bytes.byteLength)) }]));
  return encodeSafetensors(writable, { ...metadata, [key]: value });
}

test('a classifier with its trainer state, head, init and task round-trips; bad task or training metadata is refused', async () => {
  const rnn = new RNN({ inputSize: 2, hiddenSize: 4, outputSize: 3, cell: 'gru', head: { kind: 'classify', pool: 'mean' }, init: 'orthogonal', seed: 3, backend: 'reference' });
  const trainer = new Trainer(rnn, { lr: 1e-2 });
  await trainer.fit(new EpochBatcher(batches, 2), { steps: 3, validate: (info) => ({ metric: 1 / info.step, metrics: {} }), validateEvery: 1 });
  const task = { kind: 'classify', encoder: { kind: 'dense', labels: ['x', 'y', 'z'] } };
  const bytes = encodeCheckpoint(rnn, { trainer, task });
  const loaded = decodeCheckpoint(bytes, { backend: 'reference' });
  expect(loaded.rnn.head).toEqual({ kind: 'classify', pool: 'mean' });
  expect(loaded.rnn.init).toBe('orthogonal');
  expect(loaded.task).toEqual(task);
  expect(loaded.training).toMatchObject({ step: 3, k1: 0, k2: 0, data: { position: 1, epoch: 1, started: true }, best: 1 / 3, stale: 0, h: null, historySteps: 0 });
  for (const [name, p] of Object.entries(rnn.params)) expect(loaded.rnn.params[name].toArray()).toEqual(p.toArray());

  expect(() => decodeCheckpoint(withMetadata(bytes, 'task', '{"no":"kind"}'))).toThrow(CheckpointError);
  expect(() => decodeCheckpoint(withMetadata(bytes, 'task', '[1]'))).toThrow(CheckpointError);
  const training = JSON.parse(decodeSafetensors(bytes).metadata.training);
  expect(() => decodeCheckpoint(withMetadata(bytes, 'training', JSON.stringify({ ...training, historySteps: 2 })))).toThrow(/k1 = k2 = 0/);
  expect(() => decodeCheckpoint(withMetadata(bytes, 'training', JSON.stringify({ ...training, best: 'x' })))).toThrow(/best/);
  trainer.dispose();
  trainer.optimizer.dispose();
  for (const m of [rnn, loaded.rnn]) m.dispose();
  loaded.optimizer?.dispose();
});
