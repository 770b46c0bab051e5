import { DTypeError, DisposedError, ShapeError, Tensor } from '../lib';
import { addon } from '../lib/native';

describe('Tensor', () => {
  test('from copies the data and infers the dtype', () => {
    const src = new Float32Array([1, 2, 3, 4, 5, 6]);
    const t = Tensor.from(src, [2, 3]);
    src[0] = 99;
    expect(t.dtype).toBe('float32');
    expect(t.shape).toEqual([2, 3]);
    expect(t.size).toBe(6);
    expect(Array.from(t.toArray())).toEqual([1, 2, 3, 4, 5, 6]);
    const i = Tensor.from(new Int32Array([7, -1]), [2]);
    expect(i.dtype).toBe('int32');
    expect(Array.from(i.toArray())).toEqual([7, -1]);
  });

  test('toArray returns a copy; shape is read-only', () => {
    const t = Tensor.from(new Float32Array([1, 2]), [2]);
    const a = t.toArray();
    a[0] = 42;
    expect(t.toArray()[0]).toBe(1);
    expect(Object.isFrozen(t.shape)).toBe(true);
    expect(() => (t.shape as number[]).push(3)).toThrow(TypeError);
  });

  test('native storage is 64-byte aligned', () => {
    for (const shape of [[1], [3], [17], [31, 3], [100, 129]]) {
      const t = Tensor.zeros(shape);
      expect(addon()._alignmentOf(t.data())).toBe(0);
      t.dispose();
    }
  });

  test('zeros and randn', () => {
    const z = Tensor.zeros([3, 4], 'int32');
    expect(z.dtype).toBe('int32');
    expect(Array.from(z.toArray())).toEqual(new Array(12).fill(0));
    const a = Tensor.randn([1000], { seed: 7 }).toArray();
    const b = Tensor.randn([1000], { seed: 7 }).toArray();
    const c = Tensor.randn([1000], { seed: 8 }).toArray();
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    const variance = a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length;
    expect(Math.abs(mean)).toBeLessThan(0.15);
    expect(Math.abs(variance - 1)).toBeLessThan(0.15);
  });

  test('dispose is idempotent and any later use throws DisposedError', () => {
    const t = Tensor.from(new Float32Array([1, 2, 3]), [3]);
    expect(t.isDisposed).toBe(false);
    t.dispose();
    t.dispose();
    expect(t.isDisposed).toBe(true);
    expect(() => t.toArray()).toThrow(DisposedError);
    expect(() => t.write(new Float32Array(3))).toThrow(DisposedError);
    expect(t.shape).toEqual([3]);
    expect(String(t)).toMatch(/disposed/);
  });

  test('Symbol.dispose frees the tensor (using declarations)', () => {
    const t = Tensor.zeros([2]);
    t[Symbol.dispose]();
    expect(t.isDisposed).toBe(true);
  });

  test('bad arguments give typed errors', () => {
    expect(() => Tensor.from(new Float64Array(2) as unknown as Float32Array, [2])).toThrow(DTypeError);
    expect(() => Tensor.from([1, 2] as unknown as Float32Array, [2])).toThrow(DTypeError);
    expect(() => Tensor.from(new Float32Array(3), [2, 2])).toThrow(ShapeError);
    expect(() => Tensor.zeros([2, -1])).toThrow(RangeError);
    expect(() => Tensor.zeros([2.5])).toThrow(RangeError);
    expect(() => Tensor.zeros([65536, 65536])).toThrow(RangeError);
    expect(() => Tensor.zeros([2], 'float64' as 'float32')).toThrow(DTypeError);
    const t = Tensor.zeros([2]);
    expect(() => t.write(new Int32Array(2) as unknown as Float32Array)).toThrow(DTypeError);
    expect(() => t.write(new Float32Array(3))).toThrow(ShapeError);
  });

  test('the native release refuses foreign buffers instead of crashing', () => {
    // The addon's errors belong to Node's main realm, not Jest's, so match on messages.
    expect(() => addon().release(new ArrayBuffer(8))).toThrow(/not made by allocate/);
    expect(() => addon().release(42)).toThrow(/expects one ArrayBuffer/);
    expect(() => addon().allocate(-1)).toThrow(/byte count must be an integer/);
  });
});
