import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import fc from 'fast-check';
import { CheckpointError, NonFiniteError } from '../lib/errors';
import { PARAM_NAMES } from '../lib/backend';
import { RNN } from '../lib/rnn';
import { Optimizer } from '../lib/optim';
import { Tensor } from '../lib/tensor';
import { decodeCheckpoint, encodeCheckpoint, loadCheckpoint, saveCheckpoint } from '../lib/train/checkpoint';
import { decodeSafetensors, encodeSafetensors, toFloat32, writeFileAtomic, WritableTensor } from '../lib/train/safetensors';
import { CharTokenizer } from '../lib/train/tokenizer';

/** A safetensors file from a header object (serialized as given) and raw data bytes. */
function craft(header: unknown, data: Uint8Array | number = 0, rawHeader?: string): Buffer {
  const json = Buffer.from(rawHeader ?? JSON.stringify(header), 'utf8');
  const bytes = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = Buffer.alloc(8 + json.length + bytes.length);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  out.set(bytes, 8 + json.length);
  return out;
}

const f32 = (shape: number[], begin: number, end: number) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

describe('safetensors container', () => {
  it('round-trips tensors and metadata, with an 8-byte aligned data section', () => {
    const tensors = new Map([
      ['a', { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, -0, Infinity, 1e-40]) }],
      ['b', { shape: [4], data: Int32Array.from([1, -1, 2 ** 31 - 1, -(2 ** 31)]) }],
      ['empty', { shape: [0, 3], data: new Float32Array(0) }],
    ]);
    const bytes = encodeSafetensors(tensors, { note: 'hé', json: '{"x":1}' });
    const n = Number(bytes.readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);
    const back = decodeSafetensors(bytes);
    expect(back.metadata).toEqual({ note: 'hé', json: '{"x":1}' });
    expect(back.tensors.get('a')!.shape).toEqual([2, 3]);
    expect(Buffer.from(toFloat32(back.tensors.get('a')!, 'a').buffer)).toEqual(Buffer.from(tensors.get('a')!.data.buffer));
    expect(back.tensors.get('b')!.dtype).toBe('I32');
    expect(back.tensors.get('empty')!.bytes.length).toBe(0);
  });

  it('converts F64, F16 and BF16 tensors to float32', () => {
    const f64 = new Float64Array([0.5, -3, 1e-3]);
    const half = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7bff]); // 1, -2, 2^-24, 65504
    const bf16 = new Uint16Array([0x3f80, 0xc040]); // 1, -3
    const data = Buffer.concat([Buffer.from(f64.buffer), Buffer.from(half.buffer), Buffer.from(bf16.buffer)]);
    const file = craft(
      {
        x: { dtype: 'F64', shape: [3], data_offsets: [0, 24] },
        h: { dtype: 'F16', shape: [4], data_offsets: [24, 32] },
        g: { dtype: 'BF16', shape: [2], data_offsets: [32, 36] },
      },
      data,
    );
    const { tensors } = decodeSafetensors(file);
    expect(Array.from(toFloat32(tensors.get('x')!, 'x'))).toEqual(Array.from(Float32Array.from(f64)));
    expect(Array.from(toFloat32(tensors.get('h')!, 'h'))).toEqual([1, -2, Math.fround(2 ** -24), 65504]);
    expect(Array.from(toFloat32(tensors.get('g')!, 'g'))).toEqual([1, -3]);
    expect(() => toFloat32({ dtype: 'I64', shape: [0], bytes: new Uint8Array(0) }, 'y')).toThrow(CheckpointError);
  });

  const hostile: [string, Buffer][] = [
    ['an empty file', Buffer.alloc(0)],
    ['a file shorter than the length field', Buffer.from([1, 0, 0])],
    ['a header length beyond the file', (() => { const b = craft({}, 0); b.writeBigUInt64LE(BigInt(b.length), 0); return b; })()],
    ['a header length of 2^64 - 1', (() => { const b = craft({}, 0); b.writeBigUInt64LE(2n ** 64n - 1n, 0); return b; })()],
    ['a truncated file', craft({ a: f32([4], 0, 16) }, 16).subarray(0, 30)],
    ['bad JSON', craft(null, 0, '{"a": ')],
    ['a header that is not UTF-8', craft(null, 0, 'xx').fill(0xff, 8)],
    ['a header that is an array', craft([1, 2])],
    ['a header that is null', craft(null)],
    ['an unknown dtype', craft({ a: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, 16)],
    ['a dtype that is not a string', craft({ a: { dtype: 4, shape: [1], data_offsets: [0, 4] } }, 4)],
    ['a shape that disagrees with the offsets', craft({ a: f32([3], 0, 16) }, 16)],
    ['a shape with a negative size', craft({ a: f32([-1, -4], 0, 16) }, 16)],
    ['a shape with a fractional size', craft({ a: f32([1.5], 0, 6) }, 6)],
    ['a shape whose product overflows', craft({ a: f32([2 ** 40, 2 ** 40, 2 ** 40], 0, 16) }, 16)],
    ['a shape that is not an array', craft({ a: { dtype: 'F32', shape: 4, data_offsets: [0, 16] } }, 16)],
    ['offsets beyond the data', craft({ a: f32([4], 16, 32) }, 16)],
    ['offsets far out of range', craft({ a: f32([1], 2 ** 52, 2 ** 52 + 4) }, 4)],
    ['reversed offsets', craft({ a: f32([0], 8, 4) }, 8)],
    ['negative offsets', craft({ a: f32([1], -4, 0) }, 4)],
    ['one offset', craft({ a: { dtype: 'F32', shape: [1], data_offsets: [4] } }, 4)],
    ['overlapping tensors', craft({ a: f32([4], 0, 16), b: f32([4], 8, 24) }, 24)],
    ['two names for the same bytes', craft({ a: f32([4], 0, 16), b: f32([4], 0, 16) }, 16)],
    ['a gap between tensors', craft({ a: f32([1], 0, 4), b: f32([1], 8, 12) }, 12)],
    ['trailing bytes after the last tensor', craft({ a: f32([1], 0, 4) }, 8)],
    ['a tensor entry that is not an object', craft({ a: 'F32' })],
    ['non-string metadata', craft({ __metadata__: { step: 3 } })],
    ['null metadata values', craft({ __metadata__: { vocab: null } })],
    ['metadata that is not an object', craft({ __metadata__: 'x' })],
  ];

  it.each(hostile)('rejects %s with a CheckpointError', (_what, file) => {
    expect(() => decodeSafetensors(file)).toThrow(CheckpointError);
  });

  it('never fails with anything but a CheckpointError on mutated or truncated files', () => {
    const valid = encodeSafetensors(
      new Map([
        ['w', { shape: [3, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
        ['i', { shape: [2], data: Int32Array.from([7, 8]) }],
      ]),
      { vocab: '["a","b"]' },
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.nat(valid.length),
        (edits, cut) => {
          const file = Buffer.from(valid.subarray(0, cut));
          for (const [at, v] of edits) if (at < file.length) file[at] = v;
          try {
            const r = decodeSafetensors(file);
            let total = 0;
            for (const t of r.tensors.values()) total += t.bytes.length;
            expect(total).toBeLessThanOrEqual(file.length);
          } catch (err) {
            expect(err).toBeInstanceOf(CheckpointError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('atomic writes', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-atomic-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('replaces the file and leaves no temporary file behind', () => {
    const file = path.join(dir, 'm.safetensors');
    writeFileAtomic(file, Buffer.from('old'));
    writeFileAtomic(file, Buffer.from('new contents'));
    expect(fs.readFileSync(file, 'utf8')).toBe('new contents');
    expect(fs.readdirSync(dir)).toEqual(['m.safetensors']);
  });

  it('keeps the old file when the write fails', () => {
    const file = path.join(dir, 'm.safetensors');
    writeFileAtomic(file, Buffer.from('old'));
    fs.mkdirSync(path.join(dir, 'sub'));
    // Renaming a file over a non-empty directory fails after the temporary file was written.
    fs.writeFileSync(path.join(dir, 'sub', 'x'), '');
    expect(() => writeFileAtomic(path.join(dir, 'sub'), Buffer.from('new'))).toThrow();
    expect(fs.readFileSync(file, 'utf8')).toBe('old');
    expect(fs.readdirSync(dir).sort()).toEqual(['m.safetensors', 'sub']);
  });

  it('names the file it was asked to write, not its temporary file, when it fails', () => {
    const file = path.join(dir, 'missing', 'm.safetensors');
    let err: NodeJS.ErrnoException | undefined;
    try {
      writeFileAtomic(file, Buffer.from('x'));
    } catch (e) {
      err = e as NodeJS.ErrnoException;
    }
    expect(err?.message).toContain(file);
    expect(err?.message).not.toContain('.bptt-tmp');
    expect(err?.code).toBe('ENOENT');
  });

  it('removes temporary files that killed writers left for the same file, and only those', () => {
    const file = path.join(dir, 'm.safetensors');
    // A pid that no longer exists: a child that has exited.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const live = process.ppid;
    const names = {
      dead: `.bptt-tmp-${dead}-0123456789ab-m.safetensors`,
      deadOtherTarget: `.bptt-tmp-${dead}-0123456789ab-other.safetensors`,
      live: `.bptt-tmp-${live}-0123456789ab-m.safetensors`,
      mine: `.bptt-tmp-${process.pid}-0123456789ab-m.safetensors`,
      unrelated: 'notes.txt',
    };
    for (const name of Object.values(names)) fs.writeFileSync(path.join(dir, name), 'partial');
    writeFileAtomic(file, Buffer.from('new'));
    expect(fs.readdirSync(dir).sort()).toEqual([names.deadOtherTarget, names.live, names.mine, 'm.safetensors', 'notes.txt'].sort());
  });
});

describe('model checkpoints', () => {
  const tokenizer = CharTokenizer.fromText('abcde\n');
  const V = tokenizer.vocabSize;
  const H = 5;
  const model = () => new RNN({ inputSize: V, hiddenSize: H, outputSize: V, seed: 4 });
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-ckpt-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('uses the PyTorch nn.RNN + nn.Linear state_dict names and shapes', () => {
    const rnn = model();
    const file = path.join(dir, 'layout.safetensors');
    saveCheckpoint(file, rnn, { tokenizer, hyperparameters: { lr: 0.1 } });
    const { tensors, metadata } = decodeSafetensors(fs.readFileSync(file));
    const layout = Object.fromEntries([...tensors].map(([k, t]) => [k, [t.dtype, t.shape]]));
    expect(layout).toEqual({
      'rnn.weight_ih_l0': ['F32', [H, V]],
      'rnn.weight_hh_l0': ['F32', [H, H]],
      'rnn.bias_ih_l0': ['F32', [H]],
      'rnn.bias_hh_l0': ['F32', [H]],
      'fc.weight': ['F32', [V, H]],
      'fc.bias': ['F32', [V]],
    });
    expect(Array.from(toFloat32(tensors.get('rnn.bias_hh_l0')!, 'b'))).toEqual(new Array(H).fill(0));
    expect(toFloat32(tensors.get('rnn.weight_hh_l0')!, 'W')).toEqual(rnn.params.W.toArray());
    expect(toFloat32(tensors.get('fc.weight')!, 'V')).toEqual(rnn.params.V.toArray());
    expect(Object.values(metadata).every((v) => typeof v === 'string')).toBe(true);
    expect(JSON.parse(metadata.vocab)).toEqual([...tokenizer.chars]);
    expect(JSON.parse(metadata.hyperparameters)).toEqual({ lr: 0.1 });
    expect(fs.readdirSync(dir)).toEqual(['layout.safetensors']);
  });

  it('round-trips parameters bit for bit, -0 included, with the optimizer state', () => {
    const rnn = model();
    const b = rnn.params.b.toArray() as Float32Array;
    b[0] = -0;
    rnn.setParams({ ...Object.fromEntries(PARAM_NAMES.map((n) => [n, rnn.params[n].toArray() as Float32Array])), b } as Parameters<RNN['setParams']>[0]);
    const opt = new Optimizer(rnn, { kind: 'adam', beta1: 0.8 });
    opt.loadState(Object.fromEntries(Object.entries(opt.state()).map(([k, v]) => [k, v.map((_, i) => i / 7)])), 12);
    const ck = decodeCheckpoint(encodeCheckpoint(rnn, { tokenizer, optimizer: opt }));
    for (const name of PARAM_NAMES) expect(Buffer.from((ck.rnn.params[name].toArray() as Float32Array).buffer)).toEqual(Buffer.from((rnn.params[name].toArray() as Float32Array).buffer));
    expect(Object.is((ck.rnn.params.b.toArray() as Float32Array)[0], -0)).toBe(true);
    expect(ck.rnn.tokenizer?.chars).toEqual(tokenizer.chars);
    expect(ck.optimizer?.kind).toBe('adam');
    expect(ck.optimizer?.hyper.beta1).toBe(0.8);
    expect(ck.optimizer?.step).toBe(12);
    expect(ck.optimizer?.state()).toEqual(opt.state());
    expect(ck.training).toBeNull();
  });

  it('loads a PyTorch-written state_dict (float64, no metadata) by summing the two biases', () => {
    const rnn = model();
    const p = Object.fromEntries(PARAM_NAMES.map((n) => [n, rnn.params[n].toArray() as Float32Array]));
    const bhh = Float32Array.from({ length: H }, (_, i) => 0.25 * (i + 1));
    const f64 = (a: Float32Array) => new Float64Array(a);
    // Hand-written F64 file in PyTorch's key order.
    const entries: [string, Float64Array, number[]][] = [
      ['rnn.weight_ih_l0', f64(p.U), [H, V]],
      ['rnn.weight_hh_l0', f64(p.W), [H, H]],
      ['rnn.bias_ih_l0', f64(p.b), [H]],
      ['rnn.bias_hh_l0', f64(bhh), [H]],
      ['fc.weight', f64(p.V), [V, H]],
      ['fc.bias', f64(p.c), [V]],
    ];
    const header: Record<string, unknown> = {};
    let off = 0;
    for (const [name, data, shape] of entries) {
      header[name] = { dtype: 'F64', shape, data_offsets: [off, off + data.byteLength] };
      off += data.byteLength;
    }
    const file = craft(header, Buffer.concat(entries.map(([, d]) => Buffer.from(d.buffer))));
    const ck = decodeCheckpoint(file);
    expect(ck.tokenizer).toBeNull();
    expect(ck.rnn.hiddenSize).toBe(H);
    expect(ck.rnn.params.U.toArray()).toEqual(p.U);
    expect(ck.rnn.params.b.toArray()).toEqual(Float32Array.from(p.b, (v, i) => v + bhh[i]));
  });

  describe('rejects inconsistent model files with a CheckpointError', () => {
    const rnn = new RNN({ inputSize: 3, hiddenSize: 2, outputSize: 3, seed: 1 });
    const good = () => {
      const t = new Map<string, WritableTensor>();
      for (const [k, v] of decodeSafetensors(encodeCheckpoint(rnn)).tensors) t.set(k, { shape: v.shape, data: toFloat32(v, k) });
      return t;
    };
    const cases: [string, () => Buffer][] = [
      ['a missing tensor', () => { const t = good(); t.delete('rnn.weight_hh_l0'); return encodeSafetensors(t, {}); }],
      ['a wrong shape', () => { const t = good(); t.set('fc.bias', { shape: [4], data: new Float32Array(4) }); return encodeSafetensors(t, {}); }],
      ['a NaN weight', () => { const t = good(); t.set('fc.bias', { shape: [3], data: Float32Array.of(0, NaN, 0) }); return encodeSafetensors(t, {}); }],
      ['an integer weight', () => { const t = good(); t.set('fc.bias', { shape: [3], data: new Int32Array(3) }); return encodeSafetensors(t, {}); }],
      ['a vocabulary of the wrong size', () => encodeSafetensors(good(), { vocab: '["a","b"]' })],
      ['metadata contradicting the shapes', () => encodeSafetensors(good(), { model: '{"hiddenSize":7}' })],
      ['an unknown nonlinearity', () => encodeSafetensors(good(), { model: '{"nonlinearity":"sigmoid"}' })],
      ['a cell the tensors do not hold', () => encodeSafetensors(good(), { model: '{"cell":"lstm"}' })],
      ['more layers than the tensors hold', () => encodeSafetensors(good(), { model: '{"numLayers":2}' })],
      ['a dropout stream for a model without dropout', () => encodeSafetensors(good(), { dropout_stream: '[1,2,3,4]' })],
      ['an unknown optimizer', () => encodeSafetensors(good(), { optimizer: '{"kind":"lbfgs"}' })],
      ['missing optimizer state', () => encodeSafetensors(good(), { optimizer: '{"kind":"adam","step":3}' })],
      ['broken training metadata', () => encodeSafetensors(good(), { training: '{"step":-1}' })],
      ['non-JSON hyperparameters', () => encodeSafetensors(good(), { hyperparameters: '{' })],
      ['a bad RNG state', () => encodeSafetensors(good(), { rng: '[0,0,0,0]' })],
    ];
    it.each(cases)('%s', (_what, make) => {
      expect(() => decodeCheckpoint(make())).toThrow(CheckpointError);
    });
  });

  it('reports unreadable files as a CheckpointError', () => {
    expect(() => loadCheckpoint(path.join(dir, 'nope.safetensors'))).toThrow(CheckpointError);
  });

  describe('every loader error is a CheckpointError naming the file', () => {
    const rnn = new RNN({ inputSize: 3, hiddenSize: 2, outputSize: 3, seed: 1 });
    const good = () => {
      const t = new Map<string, WritableTensor>();
      for (const [k, v] of decodeSafetensors(encodeCheckpoint(rnn)).tensors) t.set(k, { shape: v.shape, data: toFloat32(v, k) });
      return t;
    };
    const cases: [string, () => Buffer][] = [
      ['biases whose sum overflows float32', () => { const t = good(); t.set('rnn.bias_ih_l0', { shape: [2], data: Float32Array.of(3e38, 0) }); t.set('rnn.bias_hh_l0', { shape: [2], data: Float32Array.of(3e38, 0) }); return encodeSafetensors(t, {}); }],
      ['an integer carried state', () => { const t = good(); t.set('train.h', { shape: [1, 2], data: new Int32Array(2) }); return encodeSafetensors(t, { training: JSON.stringify({ step: 1, k1: 1, k2: 1, historySteps: 0, batch: 1, data: null, clip: { steps: 0, clippedSteps: 0, fractionClipped: 0, lastNorm: 0, meanNorm: 0, maxNorm: 0 } }) }); }],
      ['a vocabulary that is not JSON', () => encodeSafetensors(good(), { vocab: '["a",' })],
      ['an integer weight', () => { const t = good(); t.set('fc.bias', { shape: [3], data: new Int32Array(3) }); return encodeSafetensors(t, {}); }],
      ['an optimizer hyperparameter that cannot work in float32', () => encodeSafetensors(good(), { optimizer: '{"kind":"sgd","eps":0,"step":0}' })],
      ['a truncated file', () => encodeSafetensors(good(), {}).subarray(0, 100)],
    ];
    it.each(cases)('%s', (_what, make) => {
      const file = path.join(dir, 'broken.safetensors');
      fs.writeFileSync(file, make());
      let err: unknown;
      try {
        loadCheckpoint(file);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CheckpointError);
      expect((err as Error).message.startsWith(`checkpoint ${file}: `) || (err as Error).message.startsWith(`checkpoint ${file} `)).toBe(true);
    });
  });
});

describe('training checkpoints with optimizer state', () => {
  const tokenizer = CharTokenizer.fromText('abcde\n');
  const V = tokenizer.vocabSize;
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-ckpt-opt-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function trained(): { rnn: RNN; opt: Optimizer } {
    const rnn = new RNN({ inputSize: V, hiddenSize: 5, outputSize: V, seed: 4 });
    const opt = new Optimizer(rnn, { kind: 'adam' });
    const x = Tensor.from(Int32Array.from({ length: 12 }, (_, i) => i % V), [4, 3]);
    const y = Tensor.from(Int32Array.from({ length: 12 }, (_, i) => (i * 5 + 1) % V), [4, 3]);
    for (let s = 0; s < 3; s++) rnn.trainStep(x, y, { lr: 0.01, optimizer: opt });
    return { rnn, opt };
  }

  /** The file with one float32 of tensor `name` replaced through `edit`. */
  function mutate(bytes: Buffer, name: string, edit: (x: number) => number): Buffer {
    const { tensors } = decodeSafetensors(bytes);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
    const [begin] = header[name].data_offsets as number[];
    const values = toFloat32(tensors.get(name)!, name);
    const i = values.findIndex((x) => x !== 0);
    const out = Buffer.from(bytes);
    out.writeFloatLE(edit(values[i]), 8 + n + begin + 4 * i);
    return out;
  }

  const corruptions: [string, string, (x: number) => number][] = [
    ['a second moment with its sign bit flipped', 'optim.W.v', (x) => -x],
    ['a first moment 2^30 times too large', 'optim.U.m', (x) => x * 2 ** 30],
  ];
  it.each(corruptions)('refuses %s (it would make the next step NaN)', (_what, name, edit) => {
    const { rnn, opt } = trained();
    const file = path.join(dir, 'corrupt.safetensors');
    fs.writeFileSync(file, mutate(encodeCheckpoint(rnn, { tokenizer, optimizer: opt }), name, edit));
    expect(() => loadCheckpoint(file)).toThrow(CheckpointError);
    expect(() => loadCheckpoint(file)).toThrow(file);
  });

  it('is never written with NaN parameters or an invalid optimizer state: the old file stays', () => {
    const { rnn, opt } = trained();
    const file = path.join(dir, 'guarded.safetensors');
    saveCheckpoint(file, rnn, { tokenizer, optimizer: opt });
    const before = fs.readFileSync(file);
    // What a faulty update would leave behind, written past the public API's checks.
    const w = rnn.params.W.data() as Float32Array;
    const kept = w[2];
    w[2] = NaN;
    expect(() => saveCheckpoint(file, rnn, { tokenizer, optimizer: opt })).toThrow(NonFiniteError);
    w[2] = kept;
    const v = opt.slots('W')[1].data() as Float32Array;
    v[1] = -v[1] - 1;
    expect(() => saveCheckpoint(file, rnn, { tokenizer, optimizer: opt })).toThrow(RangeError);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('.bptt-tmp'))).toEqual([]);
  });
});
