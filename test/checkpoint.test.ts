import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import fc from 'fast-check';
import { CheckpointError } from '../lib/errors';
import { decodeSafetensors, encodeSafetensors, toFloat32, writeFileAtomic } from '../lib/train/safetensors';

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
});
