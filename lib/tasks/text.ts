/**
 * Where the task readers get their text: a file read in chunks, or any (async) iterable of byte or
 * string chunks (a Readable stream, an HTTP body, an array in a test). Bytes are decoded as strict
 * UTF-8 chunk by chunk, so a file is never held whole, and an invalid byte is an error naming its
 * offset instead of a replacement character in the data.
 */
import * as fs from 'fs';

/**
 * Where a reader (readSeriesCsv, readLabelledCsv, readLabelledJsonl) gets its text: a file path,
 * or chunks of the text, bytes (UTF-8) or already decoded strings, from any iterable or async
 * iterable (a Readable stream, an array). A string is always a path: pass text held in memory as
 * `[text]`. Chunks may split a character anywhere; a byte-order mark at the start is dropped; an
 * invalid UTF-8 byte is a TypeError naming its offset.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { readSeriesCsv, type TextSource } from 'bptt';
 *
 * const bytes = new TextEncoder().encode('d\u00eda,y\n1,2.5\n2,3.5\n'); // 'í' is 2 bytes: 0xc3 0xad
 * const source: TextSource = [bytes.subarray(0, 2), bytes.subarray(2)]; // cut inside the 'í'
 * const table = await readSeriesCsv(source, { columns: ['y'], time: 'd\u00eda' });
 * assert.deepEqual(Array.from(table.values[0]), [2.5, 3.5]);
 * assert.deepEqual(table.times, ['1', '2']);
 *
 * const broken = [Uint8Array.of(0x79, 0x0a, 0x31, 0xff, 0x0a)]; // 'y\n1', then a byte UTF-8 never uses
 * await assert.rejects(readSeriesCsv(broken, { columns: ['y'] }), /not valid UTF-8: byte 3 is 0xff/);
 * ```
 */
export type TextSource = string | Iterable<Uint8Array | string> | AsyncIterable<Uint8Array | string>;

/** How error messages name a source: the path, or `name`, or '<input>'. */
export function sourceName(source: TextSource, name?: string): string {
  return name ?? (typeof source === 'string' ? source : '<input>');
}

const CHUNK_BYTES = 1 << 16;

/**
 * The source's text in chunks, each ending on a character boundary. A byte-order mark at the
 * start is dropped (spreadsheets write one); an empty source yields nothing.
 */
export async function* textChunks(source: TextSource, name: string): AsyncGenerator<string> {
  if (typeof source !== 'string' && !isIterable(source)) {
    throw new TypeError(`a text source must be a file path or an iterable of Uint8Array/string chunks, got ${source === null ? 'null' : typeof source}`);
  }
  const chunks = typeof source === 'string' ? fs.createReadStream(source, { highWaterMark: CHUNK_BYTES }) : source;
  const decoder = new StrictUtf8(name);
  let first = true;
  for await (const chunk of chunks as AsyncIterable<Uint8Array | string>) {
    let text: string;
    if (typeof chunk === 'string') text = decoder.decodeString(chunk);
    else if (chunk instanceof Uint8Array) text = decoder.decode(chunk);
    else throw new TypeError(`${name}: chunks must be Uint8Array or string, got ${chunk === null ? 'null' : typeof chunk}`);
    if (first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      first = false;
    }
    if (text.length > 0) yield text;
  }
  decoder.end();
}

function isIterable(x: unknown): x is Iterable<unknown> | AsyncIterable<unknown> {
  return typeof x === 'object' && x !== null && (Symbol.iterator in x || Symbol.asyncIterator in x);
}

/**
 * Strict streaming UTF-8: each chunk is decoded up to its last complete character and the
 * incomplete tail (at most 3 bytes) waits for the next chunk.
 */
class StrictUtf8 {
  private readonly decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  private tail = new Uint8Array(0);
  /** Bytes before `tail`, for error offsets. */
  private offset = 0;

  constructor(private readonly name: string) {}

  decode(chunk: Uint8Array): string {
    const bytes = this.tail.length === 0 ? chunk : concat(this.tail, chunk);
    const cut = completeLength(bytes);
    const whole = bytes.subarray(0, cut);
    let text: string;
    try {
      text = this.decoder.decode(whole);
    } catch {
      this.fail(whole);
    }
    this.offset += cut;
    this.tail = bytes.slice(cut);
    return text;
  }

  /** A decoded string chunk can only follow complete characters. */
  decodeString(chunk: string): string {
    if (this.tail.length > 0) this.fail(this.tail);
    this.offset += Buffer.byteLength(chunk, 'utf8');
    return chunk;
  }

  end(): void {
    if (this.tail.length > 0) this.fail(this.tail);
  }

  private fail(bytes: Uint8Array): never {
    const at = firstInvalidUtf8(bytes);
    if (at >= 0) throw new TypeError(`${this.name} is not valid UTF-8: byte ${this.offset + at} is 0x${bytes[at].toString(16).padStart(2, '0')}`);
    let lead = bytes.length - 1;
    while (lead > 0 && (bytes[lead] & 0xc0) === 0x80) lead--;
    throw new TypeError(`${this.name} is not valid UTF-8: it ends inside the character that starts at byte ${this.offset + lead}`);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Length of the prefix that ends on a character boundary (a lead byte whose sequence is cut off starts the rest). */
function completeLength(bytes: Uint8Array): number {
  const n = bytes.length;
  for (let back = 1; back <= Math.min(3, n); back++) {
    const b = bytes[n - back];
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for its lead
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

/**
 * Offset of the first byte that does not belong to a well-formed UTF-8 sequence (Unicode's table
 * 3-7: no overlong forms, no surrogates, nothing above U+10FFFF), or -1 when every sequence is
 * well formed but the last one is cut off (or there is no error).
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b < 0x80) need = 0;
    else if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      if (i + k >= bytes.length) return -1;
      const c = bytes[i + k];
      if (c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** Lines of the text (without their \n or \r\n), each with its 1-based number; a last line without a newline counts. */
export async function* textLines(chunks: AsyncIterable<string>): AsyncGenerator<{ text: string; line: number }> {
  let pending = '';
  let line = 0;
  for await (const chunk of chunks) {
    const text = pending + chunk;
    let from = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
      yield { text: text.slice(from, nl > from && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl), line: ++line };
      from = nl + 1;
    }
    pending = text.slice(from);
  }
  if (pending.length > 0) yield { text: pending.endsWith('\r') ? pending.slice(0, -1) : pending, line: ++line };
}
