import fc from 'fast-check';
import { StreamBatcher, holdoutSplit } from '../lib/train/batcher';
import { ClipStats } from '../lib/train/clipping';
import { defaultNames, namesText, shuffled } from '../lib/train/data';
import { checkSchedule, learningRate } from '../lib/train/schedules';
import { CharTokenizer } from '../lib/train/tokenizer';
import { CheckpointError } from '../lib/errors';

describe('CharTokenizer', () => {
  it('round-trips any text through encode/decode, with a sorted duplicate-free vocabulary', () => {
    fc.assert(
      fc.property(fc.fullUnicodeString({ minLength: 1 }), (text) => {
        const tok = CharTokenizer.fromText(text);
        expect(tok.decode(tok.encode(text))).toBe(text);
        const cps = tok.chars.map((c) => c.codePointAt(0) as number);
        for (let i = 1; i < cps.length; i++) expect(cps[i]).toBeGreaterThan(cps[i - 1]);
        expect(new Set(tok.chars).size).toBe(new Set(text).size);
        const ids = tok.encode(text);
        expect(ids.every((id) => id >= 0 && id < tok.vocabSize)).toBe(true);
      }),
    );
  });

  it('serializes and restores the same vocabulary', () => {
    fc.assert(
      fc.property(fc.fullUnicodeString({ minLength: 1 }), (text) => {
        const tok = CharTokenizer.fromText(text);
        const back = CharTokenizer.deserialize(tok.serialize());
        expect(back.chars).toEqual(tok.chars);
        expect(Array.from(back.encode(text))).toEqual(Array.from(tok.encode(text)));
      }),
    );
  });

  it('sorts by code point, not UTF-16 unit', () => {
    const tok = CharTokenizer.fromText('\u{1F600}\uFFFDa');
    expect(tok.chars).toEqual(['a', '\uFFFD', '\u{1F600}']);
  });

  it('rejects unknown characters unless asked to skip them, and bad vocabularies', () => {
    const tok = CharTokenizer.fromText('abc');
    expect(() => tok.encode('abd')).toThrow(RangeError);
    expect(Array.from(tok.encode('abd', { skipUnknown: true }))).toEqual([0, 1]);
    expect(() => tok.decode([3])).toThrow(RangeError);
    expect(() => CharTokenizer.deserialize('["b","a"]')).toThrow(CheckpointError);
    expect(() => CharTokenizer.deserialize('["a","a"]')).toThrow(CheckpointError);
    expect(() => CharTokenizer.deserialize('["ab"]')).toThrow(CheckpointError);
    expect(() => CharTokenizer.deserialize('{')).toThrow(CheckpointError);
    expect(() => CharTokenizer.deserialize('[1]')).toThrow(CheckpointError);
    expect(() => CharTokenizer.fromText('')).toThrow(TypeError);
  });
});

describe('StreamBatcher', () => {
  const tokens = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

  it('cuts the stream into B contiguous streams that continue from chunk to chunk', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 300 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 10 }), (n, B, T) => {
        fc.pre(n - 1 >= B);
        const data = new StreamBatcher(tokens(n), B);
        const L = data.streamLength;
        expect(L).toBe(Math.floor((n - 1) / B));
        fc.pre(T <= L);
        const chunks = data.chunksPerEpoch(T);
        for (let c = 0; c < chunks; c++) {
          const chunk = data.next(T);
          expect(chunk.reset).toBe(c === 0);
          for (let t = 0; t < T; t++) {
            for (let b = 0; b < B; b++) {
              const expected = b * L + c * T + t; // token value == its index
              expect(chunk.inputs[t * B + b]).toBe(expected);
              expect(chunk.targets[t * B + b]).toBe(expected + 1);
            }
          }
        }
        expect(data.epoch).toBe(0);
        const again = data.next(T);
        expect(again.reset).toBe(true);
        expect(data.epoch).toBe(1);
        expect(again.inputs[0]).toBe(0);
      }),
    );
  });

  it('saves and restores its position', () => {
    const a = new StreamBatcher(tokens(100), 3);
    a.next(4);
    a.next(4);
    const b = new StreamBatcher(tokens(100), 3);
    b.restore(a.state());
    expect(Array.from(b.next(5).inputs)).toEqual(Array.from(a.next(5).inputs));
    expect(() => b.restore({ position: 1e6, epoch: 0, started: true })).toThrow(RangeError);
  });

  it('refuses too little data or chunks longer than a stream', () => {
    expect(() => new StreamBatcher(tokens(4), 4)).toThrow(RangeError);
    expect(() => new StreamBatcher(tokens(10), 0)).toThrow(RangeError);
    expect(() => new StreamBatcher(tokens(10), 2).next(5)).toThrow(/do not fit/);
  });

  it('holds out a tail cut at a line break', () => {
    const text = namesText(['Anna', 'Bob', 'Carl', 'Dora', 'Eve', 'Finn', 'Gus', 'Hal', 'Ida', 'Jo']);
    const { train, valid } = holdoutSplit(text, 0.2);
    expect(train + valid).toBe(text);
    expect(train.endsWith('\n')).toBe(true);
    expect(valid.length).toBeGreaterThan(0);
    expect(() => holdoutSplit(text, 1)).toThrow(RangeError);
  });
});

describe('default names', () => {
  it('reads both @stdlib lists from node_modules, deduplicated', () => {
    const names = defaultNames();
    expect(names.length).toBeGreaterThan(8000);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain('Abigail');
    expect(names).toContain('Aaron');
    expect(names.every((n) => /^[A-Za-z][A-Za-z' -]*$/.test(n))).toBe(true);
    const s = shuffled(names, 1);
    expect(s).not.toEqual(names);
    expect([...s].sort()).toEqual(names);
    expect(shuffled(names, 1)).toEqual(s);
  });
});

describe('learning-rate schedules', () => {
  it('constant, step and cosine with warm-up', () => {
    expect(learningRate({ kind: 'constant', lr: 0.1 }, 1000)).toBe(0.1);
    const step = { kind: 'step', lr: 1, every: 10, gamma: 0.5 } as const;
    expect([0, 9, 10, 25].map((s) => learningRate(step, s))).toEqual([1, 1, 0.5, 0.25]);
    const cos = { kind: 'cosine', lr: 1, warmup: 4, total: 104, minLr: 0.1 } as const;
    expect(learningRate(cos, 0)).toBeCloseTo(0.25);
    expect(learningRate(cos, 3)).toBeCloseTo(1);
    expect(learningRate(cos, 4)).toBeCloseTo(1);
    expect(learningRate(cos, 54)).toBeCloseTo(0.55);
    expect(learningRate(cos, 104)).toBeCloseTo(0.1);
    expect(learningRate(cos, 1e6)).toBeCloseTo(0.1);
    for (let s = 5; s < 104; s++) expect(learningRate(cos, s)).toBeLessThanOrEqual(learningRate(cos, s - 1));
  });

  it('rejects invalid schedules', () => {
    expect(() => checkSchedule({ kind: 'constant', lr: -1 })).toThrow(RangeError);
    expect(() => checkSchedule({ kind: 'step', lr: 1, every: 0, gamma: 0.5 })).toThrow(RangeError);
    expect(() => checkSchedule({ kind: 'cosine', lr: 1, warmup: 0, total: 10, minLr: 2 })).toThrow(RangeError);
    expect(() => checkSchedule({ kind: 'linear', lr: 1 } as unknown as Parameters<typeof checkSchedule>[0])).toThrow(TypeError);
  });
});

describe('ClipStats', () => {
  it('counts clipped steps and survives a summary round trip', () => {
    const s = new ClipStats();
    s.record(2, true);
    s.record(1, false);
    s.record(3, true);
    s.record(0.5, false);
    const sum = s.summary();
    expect(sum).toEqual({ steps: 4, clippedSteps: 2, fractionClipped: 0.5, lastNorm: 0.5, meanNorm: 1.625, maxNorm: 3 });
    const r = ClipStats.fromSummary(sum);
    r.record(4, true);
    expect(r.summary().fractionClipped).toBe(0.6);
    expect(r.summary().maxNorm).toBe(4);
  });
});
