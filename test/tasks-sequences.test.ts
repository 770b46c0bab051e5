import { CheckpointError, ShapeError } from '../lib/errors';
import { firstNameLists } from '../lib/train/data';
import { nameGenderData, nameGenderTask } from '../lib/tasks/defaults';
import { LabelledData, labelledFromRecords, readLabelledCsv, readLabelledJsonl, stratifiedSplit, tokenize } from '../lib/tasks/labelled';
import { ClassificationBatch, SequenceBatcher, SequenceEncoder, UNKNOWN_ID, paddingFraction } from '../lib/tasks/sequences';

const jsonl = (lines: string[]) => [Buffer.from(lines.join('\n'))];

describe('reading labelled sequences', () => {
  it('reads text examples from JSONL, skipping blank lines, with their lines', async () => {
    const data = await readLabelledJsonl(jsonl(['{"text": "ab", "label": "x"}', '', '{"text": "ba c", "label": 2}', '  ']), { name: 'd.jsonl' });
    if (data.kind !== 'tokens') throw new Error('expected text');
    expect(data.count).toBe(2);
    expect(data.labelNames).toEqual(['x', '2']);
    expect(Array.from(data.lines)).toEqual([1, 3]);
    expect(data.tokens).toEqual(['a', 'b', ' ', 'c']);
    expect(Array.from(data.ids)).toEqual([0, 1, 1, 0, 2, 3]);
    expect(Array.from(data.offsets)).toEqual([0, 2, 6]);
  });

  it('reads numeric sequences: arrays of D values per step, or numbers for D = 1', async () => {
    const data = await readLabelledJsonl(jsonl(['{"sequence": [[1, 2], [3, 4], [5, 6]], "label": "up"}', '{"sequence": [[0.5, -1]], "label": "down"}']));
    if (data.kind !== 'dense') throw new Error('expected numbers');
    expect(data.inputSize).toBe(2);
    expect(Array.from(data.values)).toEqual([1, 2, 3, 4, 5, 6, 0.5, -1]);
    expect(Array.from(data.offsets)).toEqual([0, 3, 4]);
    const scalars = labelledFromRecords([{ sequence: [1, 2, 3], label: 'a' }]);
    expect(scalars.kind === 'dense' && scalars.inputSize).toBe(1);
  });

  it('reads text and labels from CSV columns', async () => {
    const data = await readLabelledCsv([Buffer.from('id,message,class\n1,"hello, world",greeting\n2,bye,farewell\n')], { textColumn: 'message', labelColumn: 'class', tokenize: 'word' });
    if (data.kind !== 'tokens') throw new Error('expected text');
    expect(data.labelNames).toEqual(['greeting', 'farewell']);
    expect(Array.from(data.ids, (i) => data.tokens[i])).toEqual(['hello', ',', 'world', 'bye']);
    await expect(readLabelledCsv([Buffer.from('text,kind\na,b\n')])).rejects.toThrow('<input> has no column "label"; its columns are "text", "kind"');
  });

  it('cuts words and punctuation, and lower-cases on request', () => {
    expect(tokenize("Don't stop—it's 3.5 km_h!", { tokenize: 'word' })).toEqual(["Don't", 'stop', '—', "it's", '3', '.', '5', 'km_h', '!']);
    expect(tokenize('AbC', { lowercase: true })).toEqual(['a', 'b', 'c']);
    expect(tokenize('a😀', {})).toEqual(['a', '😀']);
    expect(() => tokenize('x', { tokenize: 'bpe' as never })).toThrow(RangeError);
  });

  it('refuses malformed examples, naming the line', async () => {
    const cases: [string[], RegExp, ErrorConstructor][] = [
      [['{"text": "a", "label": "x"}', '{"text": "a", "label": "x"'], /^d.jsonl: line 2: not valid JSON/, TypeError],
      [['[1, 2]'], /line 1: expected an object .* got an array/, TypeError],
      [['{"text": "a", "sequence": [1], "label": "x"}'], /line 1: expected exactly one of "text" and "sequence", got both/, TypeError],
      [['{"label": "x"}'], /got neither/, TypeError],
      [['{"text": "a", "label": "x"}', '{"sequence": [1], "label": "x"}'], /line 2: has "sequence", but the examples before it have "text"/, TypeError],
      [['{"text": "", "label": "x"}'], /line 1: the text has no characters; every example needs at least one step/, RangeError],
      [['{"sequence": [], "label": "x"}'], /line 1: the sequence has no steps/, RangeError],
      [['{"text": "a", "label": ""}'], /line 1: "label" must be a non-empty string or an integer, got an empty string/, TypeError],
      [['{"text": "a", "label": 1.5}'], /"label" must be a non-empty string or an integer/, TypeError],
      [['{"text": "a"}'], /"label" must be/, TypeError],
      [['{"text": 5, "label": "x"}'], /"text" must be a string/, TypeError],
      [['{"sequence": [[1, 2], [3]], "label": "x"}'], /line 1: step 1 has 1 values, but earlier steps have 2/, ShapeError as unknown as ErrorConstructor],
      [['{"sequence": [[1, "2"]], "label": "x"}'], /step 0 must hold numbers/, TypeError],
      [['{"sequence": [1e39], "label": "x"}'], /does not fit in float32/, RangeError],
      [[''], /^d.jsonl has no examples$/, RangeError],
    ];
    for (const [lines, message, kind] of cases) {
      const read = readLabelledJsonl(jsonl(lines), { name: 'd.jsonl' });
      await expect(read).rejects.toThrow(kind);
      await expect(readLabelledJsonl(jsonl(lines), { name: 'd.jsonl' })).rejects.toThrow(message);
    }
    await expect(readLabelledJsonl(jsonl(['{"text": "   ", "label": "x"}']), { tokenize: 'word' })).rejects.toThrow(/the text has no words/);
  });
});

/** n examples of label a and m of label b, texts of varying length. */
function twoClasses(n: number, m: number): LabelledData {
  const records = [];
  for (let i = 0; i < n; i++) records.push({ text: 'a'.repeat(1 + (i % 9)), label: 'a' });
  for (let i = 0; i < m; i++) records.push({ text: 'b'.repeat(1 + (i % 23)) + 'c', label: 'b' });
  return labelledFromRecords(records);
}

describe('stratifiedSplit', () => {
  const data = twoClasses(200, 50);

  it('keeps each class share in every part, covers every example once, and depends only on the seed', () => {
    const s = stratifiedSplit(data, { validation: 0.1, test: 0.2, seed: 3 });
    const all = [...s.train, ...s.validation, ...s.test].sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 250 }, (_, i) => i));
    const count = (idx: Int32Array, label: number) => Array.from(idx).filter((i) => data.labels[i] === label).length;
    expect([count(s.test, 0), count(s.test, 1)]).toEqual([40, 10]);
    expect([count(s.validation, 0), count(s.validation, 1)]).toEqual([20, 5]);
    expect(stratifiedSplit(data, { validation: 0.1, test: 0.2, seed: 3 })).toEqual(s);
    expect(stratifiedSplit(data, { validation: 0.1, test: 0.2, seed: 4 }).test).not.toEqual(s.test);
  });

  it('keeps at least one example of every class in training', () => {
    const tiny = labelledFromRecords([
      { text: 'x', label: 'rare' },
      { text: 'y', label: 'pair' },
      { text: 'z', label: 'pair' },
    ]);
    const s = stratifiedSplit(tiny, { validation: 0.4, test: 0.5 });
    const trainLabels = new Set(Array.from(s.train, (i) => tiny.labels[i]));
    expect(trainLabels.size).toBe(2);
    expect(() => stratifiedSplit(tiny, { validation: 0.5, test: 0.5 })).toThrow(RangeError);
    expect(() => stratifiedSplit(tiny, { test: -0.1 })).toThrow(RangeError);
  });
});

describe('SequenceEncoder', () => {
  it('builds the vocabulary from the training rows only; other tokens become UNKNOWN_ID and are counted', () => {
    const data = labelledFromRecords([
      { text: 'abc', label: 'x' },
      { text: 'abd', label: 'y' },
      { text: 'zzb', label: 'x' },
    ]);
    const enc = SequenceEncoder.fit(data, Int32Array.from([0, 1]));
    expect(enc.tokens).toEqual(['a', 'b', 'c', 'd']);
    expect(enc.inputSize).toBe(5);
    expect(enc.labels).toEqual(['x', 'y']);
    const test = enc.encode(data, Int32Array.from([2]));
    expect(test.kind).toBe('tokens');
    expect(Array.from(test.data)).toEqual([UNKNOWN_ID, UNKNOWN_ID, 2]);
    expect(test.kind === 'tokens' && test.unknownTokens).toBe(2);
    expect(Array.from(enc.encodeText('dab?'))).toEqual([4, 1, 2, UNKNOWN_ID]);
    expect(enc.labelId('y')).toBe(1);
  });

  it('drops rare tokens and keeps the most frequent ones when asked', () => {
    const data = labelledFromRecords([{ text: 'aaabbc', label: 'x' }]);
    expect(SequenceEncoder.fit(data, undefined, { minCount: 2 }).tokens).toEqual(['a', 'b']);
    expect(SequenceEncoder.fit(data, undefined, { maxTokens: 1 }).tokens).toEqual(['a']);
  });

  it('refuses a label unseen in training, naming the file and line', async () => {
    const train = await readLabelledJsonl(jsonl(['{"text": "a", "label": "x"}', '{"text": "b", "label": "y"}']));
    const evalSet = await readLabelledJsonl(jsonl(['{"text": "a", "label": "x"}', '{"text": "b", "label": "z"}']), { name: 'eval.jsonl' });
    const enc = SequenceEncoder.fit(train);
    expect(() => enc.encode(evalSet)).toThrow(new RangeError('eval.jsonl: line 2: label "z" was not in the training data, so the model has no class for it (its classes: "x", "y")'));
    expect(() => enc.labelId('z')).toThrow(RangeError);
    const other = await readLabelledJsonl(jsonl(['{"text": "a b", "label": "x"}']), { tokenize: 'word' });
    expect(() => enc.encode(other)).toThrow(/read with tokenize 'word'/);
  });

  it('sorts integer labels numerically', () => {
    const data = labelledFromRecords([10, 2, 1].map((label) => ({ text: 'a', label })));
    expect(SequenceEncoder.fit(data).labels).toEqual(['1', '2', '10']);
  });

  it('standardises numeric sequences by the training rows', () => {
    const data = labelledFromRecords([
      { sequence: [[1, 10], [3, 10]], label: 'a' },
      { sequence: [[100, -5]], label: 'a' },
    ]);
    const enc = SequenceEncoder.fit(data, Int32Array.from([0]));
    const out = enc.encode(data);
    expect(enc.inputSize).toBe(2);
    // training steps: first input mean 2, std 1; second constant (std 1)
    expect(Array.from(out.data)).toEqual([-1, 0, 1, 0, 98, -15]);
    expect(Array.from(SequenceEncoder.fit(data, undefined, { normalize: false }).encode(data).data)).toEqual([1, 10, 3, 10, 100, -5]);
  });

  it('round-trips through serialize and refuses invalid saved encoders', () => {
    const data = twoClasses(5, 5);
    const enc = SequenceEncoder.fit(data);
    const back = SequenceEncoder.deserialize(enc.serialize());
    expect(back.tokens).toEqual(enc.tokens);
    expect(back.labels).toEqual(enc.labels);
    expect(back.encode(data)).toEqual(enc.encode(data));
    const dense = SequenceEncoder.fit(labelledFromRecords([{ sequence: [1, 2], label: 'a' }]));
    expect(SequenceEncoder.deserialize(dense.serialize()).serialize()).toBe(dense.serialize());
    const good = JSON.parse(enc.serialize());
    for (const bad of ['x', '[]', JSON.stringify({ ...good, labels: [] }), JSON.stringify({ ...good, tokens: ['a', 'a'] }), JSON.stringify({ ...good, tokenize: 'bpe' }), JSON.stringify({ ...good, kind: 'audio' }), JSON.stringify({ kind: 'dense', inputSize: 1, mean: [0], std: [0], labels: ['a'] })]) {
      expect(() => SequenceEncoder.deserialize(bad)).toThrow(CheckpointError);
    }
  });
});

describe('SequenceBatcher', () => {
  const data = twoClasses(300, 120);
  const enc = SequenceEncoder.fit(data);
  const set = enc.encode(data);

  /** Every check a padded batch must pass against the encoded set. */
  function checkBatch(b: ClassificationBatch) {
    const T = b.steps;
    const B = b.batch;
    expect(b.input.data.length).toBe(T * B);
    expect(Math.max(...b.lengths)).toBe(T);
    for (let k = 0; k < B; k++) {
      const i = b.indices[k];
      const n = set.offsets[i + 1] - set.offsets[i];
      expect(b.lengths[k]).toBe(n);
      expect(b.labels[k]).toBe(set.labels[i]);
      for (let t = 0; t < T; t++) expect(b.input.data[t * B + k]).toBe(t < n ? set.data[set.offsets[i] + t] : 0);
    }
  }

  it('pads each batch to its longest sequence, with lengths, labels and every example once per epoch', () => {
    const batcher = new SequenceBatcher(set, { batchSize: 16 });
    for (const shuffle of [false, true]) {
      const seen: number[] = [];
      let batches = 0;
      for (const b of batcher.batches({ shuffle, seed: 5 })) {
        checkBatch(b);
        seen.push(...b.indices);
        batches++;
      }
      expect(seen.sort((x, y) => x - y)).toEqual(Array.from({ length: set.count }, (_, i) => i));
      expect(batches).toBe(batcher.batchCount);
    }
  });

  it('draws each batch from one bucket, which keeps padding small', () => {
    const buckets = [4, 8, 16, 24];
    const batcher = new SequenceBatcher(set, { batchSize: 16, buckets });
    const lengthOf = (i: number) => set.offsets[i + 1] - set.offsets[i];
    const bucketOf = (n: number) => buckets.findIndex((bound) => n <= bound);
    for (const b of batcher.batches({ shuffle: true, seed: 1 })) expect(new Set(Array.from(b.indices, (i) => bucketOf(lengthOf(i)))).size).toBe(1);
    const bucketed = paddingFraction(batcher.batches({ shuffle: true, seed: 1 }));
    const single = paddingFraction(new SequenceBatcher(set, { batchSize: 16, buckets: [24] }).batches({ shuffle: true, seed: 1 }));
    expect(bucketed).toBeLessThan(single / 2);
    // the default (quantile) buckets help too
    expect(paddingFraction(new SequenceBatcher(set, { batchSize: 16 }).batches({ shuffle: true, seed: 1 }))).toBeLessThan(single / 2);
  });

  it('refuses a sequence longer than any bucket unless told to truncate it', () => {
    expect(() => new SequenceBatcher(set, { batchSize: 8, buckets: [4, 16] })).toThrow(/the sequence of record \d+ has (17|18|19|20|21|22|23|24) steps, more than the largest bucket \(16\); add a larger bucket or pass overflow: 'truncate'/);
    const batcher = new SequenceBatcher(set, { batchSize: 8, buckets: [4, 16], overflow: 'truncate' });
    for (const b of batcher.batches()) {
      expect(b.steps).toBeLessThanOrEqual(16);
      for (let k = 0; k < b.batch; k++) for (let t = 0; t < b.lengths[k]; t++) expect(b.input.data[t * b.batch + k]).toBe(set.data[set.offsets[b.indices[k]] + t]);
    }
    expect(() => new SequenceBatcher(set, { batchSize: 8, buckets: [8, 4] })).toThrow(RangeError);
    expect(() => new SequenceBatcher(set, { batchSize: 0 })).toThrow(RangeError);
    expect(() => batcher.batch([])).toThrow(RangeError);
    expect(() => batcher.batch([set.count])).toThrow(RangeError);
  });

  it('pads numeric sequences with zeros, D values per step', () => {
    const dense = labelledFromRecords([
      { sequence: [[1, 2], [3, 4], [5, 6]], label: 'a' },
      { sequence: [[7, 8]], label: 'b' },
    ]);
    const s = SequenceEncoder.fit(dense, undefined, { normalize: false }).encode(dense);
    const b = new SequenceBatcher(s, { batchSize: 2, buckets: [3] }).batch([1, 0]);
    expect(b.input.kind).toBe('dense');
    expect(Array.from(b.input.data)).toEqual([7, 8, 1, 2, 0, 0, 3, 4, 0, 0, 5, 6]);
    expect(Array.from(b.lengths)).toEqual([1, 3]);
    expect(Array.from(b.labels)).toEqual([1, 0]);
  });
});

describe('the first-name default', () => {
  it('labels the names of one list only, each once', () => {
    const { female, male } = firstNameLists();
    const f = new Set(female);
    const m = new Set(male);
    const data = nameGenderData();
    if (data.kind !== 'tokens') throw new Error('expected text');
    const names = Array.from({ length: data.count }, (_, i) => Array.from(data.ids.subarray(data.offsets[i], data.offsets[i + 1]), (id) => data.tokens[id]).join(''));
    expect(new Set(names).size).toBe(names.length);
    names.forEach((name, i) => {
      const label = data.labelNames[data.labels[i]];
      expect(label === 'female' ? f.has(name) && !m.has(name) : m.has(name) && !f.has(name)).toBe(true);
    });
    const onlyOne = [...f].filter((n) => !m.has(n)).length + [...m].filter((n) => !f.has(n)).length;
    expect(data.count).toBe(onlyOne);
  });

  it('is split by class and encoded with a vocabulary of the training names', () => {
    const task = nameGenderTask(7);
    expect(task.encoder.labels).toEqual(['female', 'male']);
    expect(task.train.count + task.validation.count + task.test.count).toBe(task.data.count);
    const share = (labels: Int32Array) => labels.reduce((a, l) => a + l, 0) / labels.length;
    expect(Math.abs(share(task.test.labels) - share(task.train.labels))).toBeLessThan(0.01);
    expect(task.train.kind === 'tokens' && task.train.unknownTokens).toBe(0);
  });
});
