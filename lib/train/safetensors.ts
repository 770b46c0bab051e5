/**
 * The safetensors container: an 8-byte little-endian header length N, N bytes of JSON header
 * ({ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: { string: string } }),
 * then the tensor bytes, offsets relative to the end of the header.
 *
 * Decoding trusts nothing in the file: every length, offset and shape is checked against the
 * bytes actually present before any tensor is read, so a truncated or hostile file gives a
 * CheckpointError, never an out-of-bounds read or a huge allocation.
 */
import * as fs from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';
import { CheckpointError } from '../errors';

/**
 * The safetensors element types and their sizes in bytes.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { DTYPE_SIZES } from 'bptt';
 *
 * assert.equal(DTYPE_SIZES.BF16, 2);
 * assert.equal(DTYPE_SIZES.F64, 8);
 * ```
 */
export const DTYPE_SIZES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
} as const;

/**
 * A safetensors element type: 'F32', 'F16', 'BF16', 'I32', ... (the keys of {@link DTYPE_SIZES}).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { DTYPE_SIZES, type SafetensorsDType } from 'bptt';
 *
 * const dtype: SafetensorsDType = 'F16';
 * assert.equal(DTYPE_SIZES[dtype], 2);
 * ```
 */
export type SafetensorsDType = keyof typeof DTYPE_SIZES;

/**
 * One tensor as stored: its bytes (a copy, little-endian) and how to read them.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { decodeSafetensors, encodeSafetensors, type RawTensor } from 'bptt';
 *
 * const bytes = encodeSafetensors(new Map([['x', { shape: [2], data: Float32Array.of(1.5, -2) }]]), {});
 * const x: RawTensor = decodeSafetensors(bytes).tensors.get('x')!;
 * assert.equal(x.dtype, 'F32');
 * const view = new DataView(x.bytes.buffer, x.bytes.byteOffset, x.bytes.byteLength);
 * assert.equal(view.getFloat32(4, true), -2);
 * ```
 */
export interface RawTensor {
  /** The element type. */
  dtype: SafetensorsDType;
  /** The sizes of the dimensions, row-major. */
  shape: number[];
  /** The elements' bytes, little-endian. */
  bytes: Uint8Array;
}

/**
 * A decoded safetensors file: its `__metadata__` strings and its tensors by name.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { decodeSafetensors, encodeSafetensors, type SafetensorsContents } from 'bptt';
 *
 * const contents: SafetensorsContents = decodeSafetensors(encodeSafetensors(new Map(), { author: 'me' }));
 * assert.deepEqual(contents.metadata, { author: 'me' });
 * assert.equal(contents.tensors.size, 0);
 * ```
 */
export interface SafetensorsContents {
  /** The `__metadata__` entries ({} when the file has none). */
  metadata: Record<string, string>;
  /** The tensors by name, in the header's order. */
  tensors: Map<string, RawTensor>;
}

/**
 * Tensors this package writes: a shape and its row-major data (F32, I32 or U32).
 *
 * @example
 * ```ts
 * import { encodeSafetensors, type WritableTensor } from 'bptt';
 *
 * const ids: WritableTensor = { shape: [2, 3], data: Int32Array.of(1, 2, 3, 4, 5, 6) };
 * console.log(encodeSafetensors(new Map([['ids', ids]]), {}).length);
 * ```
 */
export type WritableTensor = { shape: readonly number[]; data: Float32Array | Int32Array | Uint32Array };

/** The reference implementation's cap; a header is a few KB in practice. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function dtypeOf(data: WritableTensor['data']): SafetensorsDType {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Int32Array) return 'I32';
  return 'U32';
}

/**
 * Serializes tensors (in the given order, contiguous) and string metadata into the safetensors
 * format: an 8-byte little-endian header length, the JSON header padded with spaces to 8 bytes,
 * then the data.
 *
 * @throws CheckpointError for a shape that does not match its data, the name `__metadata__`, or
 * a big-endian host.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { encodeSafetensors } from 'bptt';
 *
 * const bytes = encodeSafetensors(new Map([['w', { shape: [2, 2], data: new Float32Array(4) }]]), { note: 'zeros' });
 * const headerLength = Number(bytes.readBigUInt64LE(0));
 * const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString());
 * assert.deepEqual(header.w, { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] });
 * ```
 */
export function encodeSafetensors(tensors: ReadonlyMap<string, WritableTensor>, metadata: Record<string, string>): Buffer {
  if (!LITTLE_ENDIAN) throw new CheckpointError('writing safetensors needs a little-endian host');
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new CheckpointError('__metadata__ is not a valid tensor name');
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new CheckpointError(`tensor ${name}: shape [${t.shape.join(', ')}] needs ${n} elements, got ${t.data.length}`);
    header[name] = { dtype: dtypeOf(t.data), shape: [...t.shape], data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  // Pads with spaces, as the reference writer does, so the tensor data starts 8-byte aligned.
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - (jsonBytes % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors.values()) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Parses a safetensors file, trusting nothing in it: every length, offset and shape is checked
 * against the bytes present, and the tensors must tile the data exactly (no overlaps, gaps or
 * trailing bytes). Tensor bytes are copied.
 *
 * @throws CheckpointError whose message starts with `what`, saying what is wrong.
 *
 * @example
 * ```ts
 * import * as fs from 'node:fs';
 * import * as os from 'node:os';
 * import * as path from 'node:path';
 * import assert from 'node:assert/strict';
 * import { RNN, decodeSafetensors, saveCheckpoint } from 'bptt';
 *
 * const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-'));
 * try {
 *   const file = path.join(dir, 'model.safetensors');
 *   saveCheckpoint(file, new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 }));
 *   const { tensors, metadata } = decodeSafetensors(fs.readFileSync(file), file);
 *   assert.deepEqual([...tensors.keys()], ['rnn.weight_ih_l0', 'rnn.weight_hh_l0', 'rnn.bias_ih_l0', 'rnn.bias_hh_l0', 'fc.weight', 'fc.bias']);
 *   console.log(JSON.parse(metadata.model));
 * } finally {
 *   fs.rmSync(dir, { recursive: true, force: true });
 * }
 * ```
 */
export function decodeSafetensors(file: Uint8Array, what = 'checkpoint'): SafetensorsContents {
  if (file.length < 8) throw new CheckpointError(`${what} is truncated: ${file.length} bytes, too short for the 8-byte header length`);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(file.length - 8)) {
    throw new CheckpointError(`${what} is truncated or corrupt: its header length ${headerLength} goes beyond the ${file.length - 8} bytes after the length field`);
  }
  if (headerLength > BigInt(MAX_HEADER_BYTES)) throw new CheckpointError(`${what} header is ${headerLength} bytes, more than the ${MAX_HEADER_BYTES} allowed`);
  const n = Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(file.subarray(8, 8 + n)));
  } catch (err) {
    throw new CheckpointError(`${what} header is not valid UTF-8 JSON: ${(err as Error).message}`);
  }
  if (!isPlainObject(header)) throw new CheckpointError(`${what} header must be a JSON object`);
  const dataStart = 8 + n;
  const dataLength = file.length - dataStart;

  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isPlainObject(value)) throw new CheckpointError(`${what} __metadata__ must be an object of strings`);
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw new CheckpointError(`${what} __metadata__.${k} must be a string, got ${v === null ? 'null' : typeof v}`);
        metadata[k] = v;
      }
      continue;
    }
    if (!isPlainObject(value)) throw new CheckpointError(`${what} tensor ${name}: entry must be an object`);
    const { dtype, shape, data_offsets: offsets } = value;
    if (typeof dtype !== 'string' || !Object.prototype.hasOwnProperty.call(DTYPE_SIZES, dtype)) {
      throw new CheckpointError(`${what} tensor ${name}: unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_SIZES).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) throw new CheckpointError(`${what} tensor ${name}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
      throw new CheckpointError(`${what} tensor ${name}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength) throw new CheckpointError(`${what} tensor ${name}: data_offsets [${begin}, ${end}] go beyond the ${dataLength} data bytes in the file`);
    let bytes = DTYPE_SIZES[dtype as SafetensorsDType];
    for (const s of shape as number[]) {
      bytes *= s;
      if (bytes > dataLength) break; // cannot match; also keeps the product exact
    }
    if (bytes !== end - begin) {
      throw new CheckpointError(`${what} tensor ${name}: shape [${shape.join(', ')}] of ${dtype} needs ${bytes > dataLength ? 'more than the file holds' : `${bytes} bytes`}, but data_offsets [${begin}, ${end}] span ${end - begin}`);
    }
    entries.push({ name, dtype: dtype as SafetensorsDType, shape: shape as number[], begin, end });
  }

  // The tensors must tile the data area exactly: no overlaps (two names for the same bytes), no
  // gaps or trailing bytes (hidden payloads), as the format's specification requires.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of sorted) {
    if (e.begin < expected) throw new CheckpointError(`${what} tensor ${e.name}: data_offsets [${e.begin}, ${e.end}] overlap another tensor's bytes`);
    if (e.begin > expected) throw new CheckpointError(`${what} has ${e.begin - expected} unused bytes before tensor ${e.name}`);
    expected = e.end;
  }
  if (expected !== dataLength) throw new CheckpointError(`${what} has ${dataLength - expected} bytes after the last tensor`);

  const tensors = new Map<string, RawTensor>();
  for (const e of entries) {
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, bytes: file.slice(dataStart + e.begin, dataStart + e.end) });
  }
  return { metadata, tensors };
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Reads a floating-point tensor (F32, F64, F16, BF16) as float32 values. */
export function toFloat32(t: RawTensor, what: string): Float32Array {
  const view = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const n = t.bytes.byteLength / DTYPE_SIZES[t.dtype];
  const out = new Float32Array(n);
  switch (t.dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
      break;
    case 'BF16': {
      // bfloat16 is the top half of a float32's bits.
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      break;
    }
    default:
      throw new CheckpointError(`${what} must be a floating-point tensor (F32, F64, F16 or BF16), got ${t.dtype}`);
  }
  return out;
}

/** Reads an I32 tensor. */
export function toInt32(t: RawTensor, what: string): Int32Array {
  if (t.dtype !== 'I32') throw new CheckpointError(`${what} must be an I32 tensor, got ${t.dtype}`);
  const view = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const out = new Int32Array(t.bytes.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getInt32(4 * i, true);
  return out;
}

/** A new temporary file name for this process's write to `target`, in the same directory. */
function tempName(target: string): string {
  return path.join(path.dirname(target), `.bptt-tmp-${process.pid}-${randomBytes(6).toString('hex')}-${path.basename(target)}`);
}

/** Names made by tempName: the pid, then the target's base name. */
const TEMP_NAME = /^\.bptt-tmp-(\d+)-[0-9a-f]{12}-(.*)$/s;

/**
 * Removes temporary files that writers to `target` left when they were killed mid-write: those of
 * processes that no longer exist. Another live process's file may be a write in flight, and this
 * process's own ones belong to writes in other threads, so both stay. Best effort: what cannot be
 * listed or removed stays.
 */
function removeStaleTemps(target: string): void {
  const dir = path.dirname(target);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m || m[2] !== path.basename(target)) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processExists(pid)) continue;
    try {
      fs.rmSync(path.join(dir, name), { force: true });
    } catch {
      // e.g. a directory of that name, or no permission: not ours to force.
    }
  }
}

function processExists(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Replaces `file` with `data` so that a crash at any moment leaves either the old file or the
 * complete new one: write a temporary file in the same directory, fsync it, rename it over the
 * target, then fsync the directory so the rename itself is durable. First removes what killed
 * writers to the same file left behind. Errors name `file`, not the temporary file.
 *
 * @throws an Error "cannot write FILE: ..." carrying the system error's code (e.g. ENOENT).
 *
 * @example
 * ```ts
 * import * as fs from 'node:fs';
 * import * as os from 'node:os';
 * import * as path from 'node:path';
 * import assert from 'node:assert/strict';
 * import { writeFileAtomic } from 'bptt';
 *
 * const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-'));
 * try {
 *   const file = path.join(dir, 'notes.txt');
 *   writeFileAtomic(file, Buffer.from('first'));
 *   writeFileAtomic(file, Buffer.from('second'));
 *   assert.equal(fs.readFileSync(file, 'utf8'), 'second');
 *   assert.throws(() => writeFileAtomic(path.join(dir, 'missing', 'x'), Buffer.from('')), { code: 'ENOENT' });
 * } finally {
 *   fs.rmSync(dir, { recursive: true, force: true });
 * }
 * ```
 */
export function writeFileAtomic(file: string, data: Uint8Array): void {
  const target = path.resolve(file);
  const dir = path.dirname(target);
  removeStaleTemps(target);
  const tmp = tempName(target);
  try {
    const fd = fs.openSync(tmp, 'wx', 0o644);
    try {
      try {
        let written = 0;
        while (written < data.length) written += fs.writeSync(fd, data, written, data.length - written);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, target);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw err;
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const failure: NodeJS.ErrnoException = new Error(`cannot write ${file}: ${String(e?.message ?? err).split(tmp).join(target)}`, { cause: err });
    if (e?.code !== undefined) failure.code = e.code;
    throw failure;
  }
  let dirFd: number | undefined;
  try {
    dirFd = fs.openSync(dir, 'r');
    fs.fsyncSync(dirFd);
  } catch {
    // Some platforms (Windows, a few network file systems) cannot fsync a directory; the rename
    // is still atomic there, only its durability across a power cut is up to the OS.
  } finally {
    if (dirFd !== undefined) fs.closeSync(dirFd);
  }
}
