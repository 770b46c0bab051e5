import { NonFiniteError } from '../lib/errors';
import { readSeriesCsv, seriesColumn, seriesFromColumns } from '../lib/tasks/series';

const csv = (text: string) => [Buffer.from(text)];

describe('readSeriesCsv', () => {
  it('keeps the numeric columns asked for, in that order, and the time column as text', async () => {
    const t = await readSeriesCsv(csv('date,sales,dow,note\n2024-01-01,10.5,1,x\n2024-01-02,-3e2,2,"y, z"\n2024-01-03, +.5 ,3,\n'), { columns: ['dow', 'sales'], time: 'date' });
    expect(t.columns).toEqual(['dow', 'sales']);
    expect(t.length).toBe(3);
    expect(Array.from(seriesColumn(t, 'sales'))).toEqual([10.5, -300, 0.5]);
    expect(Array.from(seriesColumn(t, 'dow'))).toEqual([1, 2, 3]);
    expect(t.times).toEqual(['2024-01-01', '2024-01-02', '2024-01-03']);
    expect(t.filled).toEqual([0, 0]);
    expect(() => seriesColumn(t, 'note')).toThrow('the series has no column "note"; its columns are "dow", "sales"');
  });

  it('refuses a column that does not exist, naming the columns there are', async () => {
    await expect(readSeriesCsv(csv('a,b\n1,2\n'), { columns: ['sales'], name: 'shop.csv' })).rejects.toThrow(new RangeError('shop.csv has no column "sales"; its columns are "a", "b"'));
  });

  it('refuses a value that is not a number, naming the line and the column', async () => {
    for (const bad of ['abc', '1,234', '0x10', '12abc', '1e', '--1', 'Infinity']) {
      const text = `a,b\n1,2\n3,"${bad}"\n`;
      await expect(readSeriesCsv(csv(text), { columns: ['a', 'b'], name: 'f.csv' })).rejects.toThrow(TypeError);
      await expect(readSeriesCsv(csv(text), { columns: ['a', 'b'], name: 'f.csv' })).rejects.toThrow(`f.csv: line 3: column "b": ${JSON.stringify(bad)} is not a number`);
    }
    await expect(readSeriesCsv(csv('a\n1e999\n'), { columns: ['a'] })).rejects.toThrow(NonFiniteError);
  });

  it('refuses a missing value by default, and says how to fill it', async () => {
    for (const missing of ['', 'NA', 'n/a', 'NaN', 'null', ' None ']) {
      const text = `a,b\n1,2\n3,${missing}\n4,5\n`;
      const read = readSeriesCsv(csv(text), { columns: ['a', 'b'], name: 'f.csv' });
      await expect(read).rejects.toThrow(NonFiniteError);
      await expect(readSeriesCsv(csv(text), { columns: ['a', 'b'], name: 'f.csv' })).rejects.toThrow(`f.csv: column "b": line 3: the value is missing (empty, NA or NaN); pass fill 'previous', 'linear' or 'zero'`);
    }
  });

  it('fills missing values by the policy asked for, and counts them', async () => {
    const text = 'y\n1\n\n\n7\nNaN\n9\n';
    const read = async (fill: 'previous' | 'linear' | 'zero') => readSeriesCsv(csv(text), { columns: ['y'], fill });
    expect(Array.from((await read('previous')).values[0])).toEqual([1, 1, 1, 7, 7, 9]);
    expect(Array.from((await read('linear')).values[0])).toEqual([1, 3, 5, 7, 8, 9]);
    expect(Array.from((await read('zero')).values[0])).toEqual([1, 0, 0, 7, 0, 9]);
    expect((await read('linear')).filled).toEqual([3]);
  });

  it('refuses gaps a policy cannot fill: no value before (previous, linear) or after (linear)', async () => {
    await expect(readSeriesCsv(csv('y\nNA\n2\n'), { columns: ['y'], fill: 'previous' })).rejects.toThrow(/line 2: the first value is missing, so fill 'previous' has no earlier value/);
    await expect(readSeriesCsv(csv('y\nNA\n2\n'), { columns: ['y'], fill: 'linear' })).rejects.toThrow(NonFiniteError);
    await expect(readSeriesCsv(csv('y\n1\n2\nNA\n'), { columns: ['y'], fill: 'linear' })).rejects.toThrow(/the values from line 4 to the end are missing, so fill 'linear' has no later value/);
    expect(Array.from((await readSeriesCsv(csv('y\nNA\n2\n'), { columns: ['y'], fill: 'zero' })).values[0])).toEqual([0, 2]);
  });

  it('refuses an empty file, a header without rows, and bad options', async () => {
    await expect(readSeriesCsv(csv(''), { columns: ['y'], name: 'e.csv' })).rejects.toThrow(new RangeError('e.csv is empty: expected a header line naming the columns, then data rows'));
    await expect(readSeriesCsv(csv('y\n'), { columns: ['y'], name: 'e.csv' })).rejects.toThrow(new RangeError('e.csv has a header but no data rows'));
    await expect(readSeriesCsv(csv('y\n1\n'), { columns: [] })).rejects.toThrow(TypeError);
    await expect(readSeriesCsv(csv('y\n1\n'), { columns: ['y', 'y'] })).rejects.toThrow(/named twice/);
    await expect(readSeriesCsv(csv('y\n1\n'), { columns: ['y'], fill: 'mean' as never })).rejects.toThrow(RangeError);
    await expect(readSeriesCsv(csv('y\n1\n'), { columns: ['y'], time: 'y' })).rejects.toThrow(TypeError);
  });
});

describe('seriesFromColumns', () => {
  it('takes arrays; null, undefined and NaN are missing values', () => {
    const t = seriesFromColumns({ a: [1, undefined, 3], b: new Float64Array([1, NaN, 4]) }, { fill: 'linear', times: ['x', 'y', 'z'] });
    expect(t.values.map((v) => Array.from(v))).toEqual([
      [1, 2, 3],
      [1, 2.5, 4],
    ]);
    expect(t.filled).toEqual([1, 1]);
    expect(t.times).toEqual(['x', 'y', 'z']);
    expect(() => seriesFromColumns({ a: [1, null, 3] })).toThrow(new NonFiniteError("column \"a\": index 1: the value is missing (empty, NA or NaN); pass fill 'previous', 'linear' or 'zero' to fill missing values"));
    expect(() => seriesFromColumns({ b: [NaN, 2] }, { fill: 'linear' })).toThrow(NonFiniteError);
    expect(Array.from(seriesFromColumns({ a: [1, null, 3] }, { fill: 'linear' }).values[0])).toEqual([1, 2, 3]);
    expect(t.length).toBe(3);
    expect(() => seriesFromColumns({ b: [NaN, 2, 4] }, { fill: 'previous' })).toThrow(/first value is missing/);
  });

  it('refuses infinities, non-numbers, unequal lengths and empty columns', () => {
    expect(() => seriesFromColumns({ a: [1, Infinity] })).toThrow(NonFiniteError);
    expect(() => seriesFromColumns({ a: [1, '2' as never] })).toThrow(TypeError);
    expect(() => seriesFromColumns({ a: [1, 2], b: [1] })).toThrow(new RangeError('columns must have one length: "a" has 2 values, "b" has 1'));
    expect(() => seriesFromColumns({ a: [] })).toThrow(RangeError);
    expect(() => seriesFromColumns({})).toThrow(TypeError);
    expect(() => seriesFromColumns({ a: [1] }, { times: ['x', 'y'] })).toThrow(TypeError);
  });
});
