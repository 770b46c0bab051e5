import fc from 'fast-check';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CsvParser, csvRecords, csvRows } from '../lib/tasks/csv';
import { firstInvalidUtf8, textChunks, textLines } from '../lib/tasks/text';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Parses text fed in the given chunks. */
function parse(chunks: string[]): { fields: string[]; line: number }[] {
  const p = new CsvParser();
  return [...chunks.flatMap((c) => p.push(c)), ...p.end()];
}

/** Splits a string at the given cut points. */
function cut(text: string, points: number[]): string[] {
  const at = [...new Set(points.map((p) => p % (text.length + 1)))].sort((a, b) => a - b);
  const out: string[] = [];
  let from = 0;
  for (const p of at) {
    out.push(text.slice(from, p));
    from = p;
  }
  out.push(text.slice(from));
  return out;
}

describe('CsvParser', () => {
  it('reads quoted fields with delimiters, newlines and doubled quotes, and counts lines', () => {
    const text = 'a,b,c\n1,"x,y",3\r\n"multi\nline","say ""hi""",\n\nlast,"",z';
    expect(parse([text])).toEqual([
      { fields: ['a', 'b', 'c'], line: 1 },
      { fields: ['1', 'x,y', '3'], line: 2 },
      { fields: ['multi\nline', 'say "hi"', ''], line: 3 },
      { fields: [''], line: 5 },
      { fields: ['last', '', 'z'], line: 6 },
    ]);
  });

  it('treats \\r\\n, \\n and a lone \\r as one newline each, also when a chunk ends between \\r and \\n', () => {
    expect(parse(['a\r', '\nb\rc\n'])).toEqual([
      { fields: ['a'], line: 1 },
      { fields: ['b'], line: 2 },
      { fields: ['c'], line: 3 },
    ]);
    expect(parse(['"x\r', '\ny"\n', 'z'])).toEqual([
      { fields: ['x\r\ny'], line: 1 },
      { fields: ['z'], line: 3 },
    ]);
  });

  it('gives the same records and lines however the text is cut into chunks', () => {
    const field = fc.stringOf(fc.constantFrom('a', 'b', ',', '"', '\n', '\r\n', ' ', 'é', '😀'), { maxLength: 6 });
    const table = fc.array(fc.array(field, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(table, fc.array(fc.nat(), { maxLength: 8 }), fc.constantFrom('\n', '\r\n'), (rows, points, eol) => {
        // A one-field row of '' would be a blank line; quote every field so each row is a record as written.
        const text = rows.map((r) => r.map((f) => `"${f.replace(/"/g, '""')}"`).join(',')).join(eol);
        const expected: { fields: string[]; line: number }[] = [];
        let line = 1;
        for (const r of rows) {
          expected.push({ fields: r, line });
          line += 1 + r.reduce((n, f) => n + (f.match(/\r\n|\n|\r/g)?.length ?? 0), 0);
        }
        expect(parse(cut(text, points))).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a quoted field that is never closed or has text after its closing quote, naming the line', () => {
    expect(() => parse(['a,b\n1,"open\n2,3\n'])).toThrow(/quoted field that starts on line 2 is never closed/);
    expect(() => parse(['a\n"x"y\n'])).toThrow(TypeError);
    expect(() => parse(['a\n"x"y\n'])).toThrow(/line 2: a quoted field must end at its closing quote/);
  });

  it('takes another delimiter and refuses delimiters that cannot work', () => {
    const p = new CsvParser({ delimiter: ';' });
    expect([...p.push('a;"b;c"\n'), ...p.end()]).toEqual([{ fields: ['a', 'b;c'], line: 1 }]);
    for (const d of ['"', '\n', '', ';;']) expect(() => new CsvParser({ delimiter: d })).toThrow(RangeError);
  });
});

describe('csvRows', () => {
  const source = (text: string) => [Buffer.from(text)];

  it('keeps only the columns asked for, in the order asked, with their lines, skipping blank lines', async () => {
    const rows = await collect(csvRows(source(' date , a,b\n2020-01-01,1,2\n\n2020-01-02,3,4\n'), ['b', 'date']));
    expect(rows).toEqual([
      { values: ['2', '2020-01-01'], line: 2 },
      { values: ['4', '2020-01-02'], line: 4 },
    ]);
  });

  it('names the columns there are when one does not exist', async () => {
    const rows = collect(csvRows(source('a,b\n1,2\n'), ['a', 'sales'], { name: 'shop.csv' }));
    await expect(rows).rejects.toThrow(RangeError);
    await expect(collect(csvRows(source('a,b\n1,2\n'), ['sales'], { name: 'shop.csv' }))).rejects.toThrow('shop.csv has no column "sales"; its columns are "a", "b"');
  });

  it('refuses rows with another field count, a header naming a column twice, and an empty file', async () => {
    await expect(collect(csvRows(source('a,b\n1,2\n3\n'), ['a']))).rejects.toThrow('<input>: line 3: expected 2 fields, as in the header, got 1');
    await expect(collect(csvRows(source('a,b,a\n1,2,3\n'), ['b']))).rejects.toThrow(/names column "a" twice/);
    await expect(collect(csvRows(source(''), ['a'], { name: 'empty.csv' }))).rejects.toThrow(RangeError);
    await expect(collect(csvRows([], ['a'], { name: 'empty.csv' }))).rejects.toThrow('empty.csv is empty');
  });

  it('streams a file from disk larger than one read chunk', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-csv-'));
    const file = path.join(dir, 'big.csv');
    const lines = ['id,name,value'];
    for (let i = 0; i < 20000; i++) lines.push(`${i},"n€me ${i}, ok",${i * 0.5}`);
    fs.writeFileSync(file, lines.join('\n'));
    try {
      expect(fs.statSync(file).size).toBeGreaterThan(4 * 65536);
      let count = 0;
      let wrong = 0;
      for await (const row of csvRows(file, ['value', 'name'])) {
        if (row.values[0] !== String(count * 0.5) || row.values[1] !== `n€me ${count}, ok` || row.line !== count + 2) wrong++;
        count++;
      }
      expect({ count, wrong }).toEqual({ count: 20000, wrong: 0 });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('textChunks (strict UTF-8)', () => {
  const decode = (chunks: (Uint8Array | string)[]) => collect(textChunks(chunks, 'data.csv')).then((c) => c.join(''));

  it('decodes multi-byte characters cut at any byte', async () => {
    const text = 'aé€😀b\u{10FFFF}';
    const bytes = Buffer.from(text);
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) {
        expect(await decode([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)])).toBe(text);
      }
    }
  });

  it('drops a byte-order mark at the start only', async () => {
    expect(await decode([Buffer.from([0xef, 0xbb]), Buffer.from([0xbf, 0x61, 0xef, 0xbb, 0xbf])])).toBe('a\ufeff');
  });

  it('names the offset of the first invalid byte, across chunks', async () => {
    await expect(decode([Buffer.from('abc'), Buffer.from([0x64, 0xff, 0x65])])).rejects.toThrow('data.csv is not valid UTF-8: byte 4 is 0xff');
    await expect(decode([Buffer.from('ab\xe2', 'latin1'), Buffer.from([0x82, 0x41])])).rejects.toThrow('byte 2 is 0xe2');
    await expect(decode([Buffer.from([0x61, 0xe2, 0x82])])).rejects.toThrow('data.csv is not valid UTF-8: it ends inside the character that starts at byte 1');
    await expect(decode([Buffer.from([0xed, 0xa0, 0x80])])).rejects.toThrow(TypeError); // an encoded surrogate
  });

  it('firstInvalidUtf8 agrees with a fatal TextDecoder on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), (bytes) => {
        let valid = true;
        try {
          new TextDecoder('utf-8', { fatal: true }).decode(bytes);
        } catch {
          valid = false;
        }
        const at = firstInvalidUtf8(bytes);
        if (valid) expect(at).toBe(-1);
        else if (at >= 0) {
          // everything before the offset is valid
          expect(() => new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, at))).not.toThrow();
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('textLines splits on \\n and \\r\\n across chunks and keeps a last line without newline', async () => {
    async function* chunks() {
      yield 'a\r';
      yield '\nb\n\nc';
    }
    expect(await collect(textLines(chunks()))).toEqual([
      { text: 'a', line: 1 },
      { text: 'b', line: 2 },
      { text: '', line: 3 },
      { text: 'c', line: 4 },
    ]);
  });

  it('refuses a source that is not a path or an iterable of chunks', async () => {
    await expect(decode(42 as never)).rejects.toThrow(TypeError);
    await expect(decode([42 as never])).rejects.toThrow('chunks must be Uint8Array or string');
  });
});
