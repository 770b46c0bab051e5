/**
 * Fuzzing the checkpoint loader with a seeded mutator over a valid training checkpoint that holds
 * Adam state, a carried hidden state, kept inputs, a vocabulary and an RNG: byte flips,
 * truncations, edits of the JSON header and its metadata, and extreme tensor values.
 *
 * Asserted for every mutant: loading either fails with a CheckpointError (never another error, a
 * crash or a hang), or gives a model whose next training step with its optimizer leaves every
 * parameter and state value finite, or refuses with a NonFiniteError that changes nothing. What
 * that step leaves must save and load again.
 */
import { PARAM_NAMES } from '../lib/backend';
import { CheckpointError, NonFiniteError } from '../lib/errors';
import { Optimizer } from '../lib/optim';
import { Rng } from '../lib/rng';
import { BackendName, RNN } from '../lib/rnn';
import { Tensor } from '../lib/tensor';
import { StreamBatcher } from '../lib/train/batcher';
import { Checkpoint, decodeCheckpoint, encodeCheckpoint } from '../lib/train/checkpoint';
import { decodeSafetensors } from '../lib/train/safetensors';
import { CharTokenizer } from '../lib/train/tokenizer';
import { Trainer } from '../lib/train/trainer';

const CASES = 3000;

async function validCheckpoint(): Promise<Buffer> {
  const text = 'the quick brown fox jumps over the lazy dog\n'.repeat(4);
  const tokenizer = CharTokenizer.fromText(text);
  const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 6, outputSize: tokenizer.vocabSize, seed: 5 });
  const trainer = new Trainer(rnn, { optimizer: 'adam', lr: 0.01, k1: 3, k2: 5, clipNorm: 1 });
  await trainer.fit(new StreamBatcher(tokenizer.encode(text), 3), { steps: 7 });
  return encodeCheckpoint(rnn, { tokenizer, trainer, rng: new Rng(3), hyperparameters: { lr: 0.01 } });
}

/** The file's header as JSON, and where its data starts. */
function splitHeader(file: Buffer): { header: Record<string, unknown>; data: Buffer } {
  const n = Number(file.readBigUInt64LE(0));
  return { header: JSON.parse(file.subarray(8, 8 + n).toString('utf8')), data: file.subarray(8 + n) };
}

function joinHeader(header: unknown, data: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const out = Buffer.alloc(8 + json.length + data.length);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  data.copy(out, 8 + json.length);
  return out;
}

const INTERESTING: unknown[] = [0, -0, -1, 1, 0.5, 1.5, 2, 7, 1e-45, 1e-50, 0.99999999, 1 - 2 ** -24, 3e38, 1e300, -1e300, 2 ** 53, 2 ** 31, null, 'x', '', [], {}, true, [1, 2], { a: 1 }];
const EXTREMES = [NaN, Infinity, -Infinity, -0, 3.4028234663852886e38, -3.4028234663852886e38, 1e30, -1e30, 1e-45, -1e-45, 1e-38, 2 ** -126, 0];

class Mutator {
  constructor(private readonly rng: Rng) {}

  pick<T>(items: readonly T[]): T {
    return items[this.rng.int(items.length)];
  }

  /** Replaces a random node inside a JSON value (objects, arrays) with an interesting value, or deletes an object key. */
  editJson(value: unknown): unknown {
    if (typeof value !== 'object' || value === null || this.rng.next() < 0.15) return this.pick(INTERESTING);
    if (Array.isArray(value)) {
      if (value.length === 0) return this.pick(INTERESTING);
      const copy = [...value];
      const i = this.rng.int(copy.length);
      copy[i] = this.editJson(copy[i]);
      return copy;
    }
    const copy = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(copy);
    if (keys.length === 0) return this.pick(INTERESTING);
    const key = this.pick(keys);
    if (this.rng.next() < 0.15) delete copy[key];
    else copy[key] = this.editJson(copy[key]);
    return copy;
  }

  mutate(valid: Buffer): { kind: string; bytes: Buffer } {
    const r = this.rng.next();
    if (r < 0.15) {
      const out = Buffer.from(valid);
      const flips = 1 + this.rng.int(4);
      for (let i = 0; i < flips; i++) out[this.rng.int(out.length)] ^= 1 << this.rng.int(8);
      return { kind: 'bit flips', bytes: out };
    }
    if (r < 0.22) {
      const out = Buffer.from(valid);
      out[this.rng.int(out.length)] = this.rng.int(256);
      return { kind: 'byte overwrite', bytes: out };
    }
    if (r < 0.3) return { kind: 'truncation', bytes: Buffer.from(valid.subarray(0, this.rng.int(valid.length))) };
    const { header, data } = splitHeader(valid);
    if (r < 0.55) {
      // Metadata: each value is a string, most of them JSON.
      const meta = { ...(header.__metadata__ as Record<string, string>) };
      const key = this.pick(Object.keys(meta));
      let edited: unknown;
      try {
        edited = JSON.stringify(this.editJson(JSON.parse(meta[key])));
      } catch {
        edited = this.pick(INTERESTING);
      }
      if (this.rng.next() < 0.1) delete meta[key];
      else meta[key] = edited === undefined ? 'undefined' : (edited as string);
      return { kind: `metadata ${key}`, bytes: joinHeader({ ...header, __metadata__: meta }, data) };
    }
    if (r < 0.7) {
      const names = Object.keys(header).filter((k) => k !== '__metadata__');
      const name = this.pick(names);
      const edited = { ...header, [name]: this.editJson(header[name]) };
      if (this.rng.next() < 0.2) delete edited[name];
      return { kind: `header entry ${name}`, bytes: joinHeader(edited, data) };
    }
    // Extreme values inside one float32 tensor: one element, a few, or all of them; for Adam's
    // moments also sign flips and scaling.
    const names = Object.keys(header).filter((k) => k !== '__metadata__' && (header[k] as { dtype: string }).dtype === 'F32');
    const name = this.pick(names);
    const [begin, end] = (header[name] as { data_offsets: number[] }).data_offsets;
    const out = Buffer.from(valid);
    const at = valid.length - data.length + begin;
    const count = (end - begin) / 4;
    if (count === 0) return { kind: 'no-op', bytes: out };
    const mode = this.rng.int(4);
    const indices = mode === 0 ? Array.from({ length: count }, (_, i) => i) : Array.from({ length: 1 + this.rng.int(3) }, () => this.rng.int(count));
    for (const i of indices) {
      const old = out.readFloatLE(at + 4 * i);
      const value = mode === 3 ? -old : mode === 2 ? old * 2 ** (this.rng.int(200) - 100) : this.pick(EXTREMES);
      out.writeFloatLE(value, at + 4 * i);
    }
    return { kind: `values of ${name}`, bytes: out };
  }
}

function snapshot(ck: Checkpoint): Buffer {
  const parts = PARAM_NAMES.map((n) => Buffer.from((ck.rnn.params[n].toArray() as Float32Array).buffer));
  if (ck.optimizer) {
    const s = ck.optimizer.state();
    for (const k of Object.keys(s).sort()) parts.push(Buffer.from(s[k].buffer));
    parts.push(Buffer.from(String(ck.optimizer.step)));
  }
  return Buffer.concat(parts);
}

function allFinite(ck: Checkpoint): boolean {
  for (const n of PARAM_NAMES) if (!(ck.rnn.params[n].toArray() as Float32Array).every(Number.isFinite)) return false;
  if (ck.optimizer) for (const v of Object.values(ck.optimizer.state())) if (!v.every(Number.isFinite)) return false;
  return true;
}

/** One more training step: finite results, or a NonFiniteError that changed nothing. Returns what happened. */
function stepOnce(ck: Checkpoint, seed: number): 'stepped' | 'step refused' {
  const { inputSize: D, outputSize: K } = ck.rnn;
  const rng = new Rng(seed);
  const x = Tensor.from(Int32Array.from({ length: 12 }, () => rng.int(D)), [4, 3]);
  const y = Tensor.from(Int32Array.from({ length: 12 }, () => rng.int(K)), [4, 3]);
  const before = snapshot(ck);
  try {
    ck.rnn.trainStep(x, y, { lr: 0.01, optimizer: ck.optimizer ?? undefined }).hT.dispose();
  } catch (err) {
    if (!(err instanceof NonFiniteError)) throw err;
    expect(snapshot(ck).equals(before)).toBe(true);
    return 'step refused';
  } finally {
    x.dispose();
    y.dispose();
  }
  expect(allFinite(ck)).toBe(true);
  return 'stepped';
}

describe('checkpoint loader fuzz', () => {
  for (const backend of ['reference', 'native'] as BackendName[]) {
    it(`${CASES} seeded mutants of an Adam training checkpoint (${backend} backend)`, () => fuzz(backend));
  }
});

async function fuzz(backend: BackendName): Promise<void> {
  const valid = await validCheckpoint();
  expect(decodeSafetensors(valid).tensors.has('optim.W.v')).toBe(true);
  const mutator = new Mutator(new Rng(backend === 'native' ? 2024 : 2025));
  const outcomes = new Map<string, number>();
  const count = (what: string) => outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
  for (let n = 0; n < CASES; n++) {
    const { kind, bytes } = mutator.mutate(valid);
    const what = `case ${n} (${kind})`;
    let ck: Checkpoint;
    try {
      ck = decodeCheckpoint(bytes, { backend }, what);
    } catch (err) {
      if (!(err instanceof CheckpointError)) throw new Error(`${what}: ${String(err)} is not a CheckpointError`);
      expect(err.message.startsWith(what)).toBe(true);
      count('load refused');
      continue;
    }
    try {
      count(stepOnce(ck, n));
      // What the step left saves, and what saves loads.
      const again = decodeCheckpoint(encodeCheckpoint(ck.rnn, { optimizer: ck.optimizer ?? undefined }), { backend }, `${what} saved again`);
      again.rnn.dispose();
      again.optimizer?.dispose();
    } catch (err) {
      throw new Error(`${what}: ${(err as Error).stack}`);
    } finally {
      ck.rnn.dispose();
      ck.optimizer?.dispose();
    }
  }
  // The mutator must keep producing both outcomes, or the test stops testing the step.
  expect(outcomes.get('load refused')).toBeGreaterThan(CASES / 10);
  expect(outcomes.get('stepped')).toBeGreaterThan(CASES / 10);
}
