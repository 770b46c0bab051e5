/**
 * The native kernels on every ISA this machine runs, against float64 references: the packed GEMM
 * (every transpose, accumulate, padded strides, tanh epilogue, block-boundary shapes, thread-count
 * independence), tanh, softmax and the fused softmax / cross-entropy row, and argument checking.
 */
import fc from 'fast-check';
import { addon } from '../lib/native';

const native = addon();
const isas: string[] = native.supportedIsas();
const TILE: Record<string, [number, number]> = { scalar: [4, 8], avx2: [6, 16], avx512: [8, 32] };

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296 - 0.5;
  };
}

interface Case {
  M: number;
  N: number;
  K: number;
  ta: boolean;
  tb: boolean;
  acc: boolean;
  tanh: boolean;
  pad: number;
}

/** Runs one product through the addon and checks it against float64; returns C. */
function checkGemm(c: Case, packed: boolean, seed = 1): Float32Array {
  const { M, N, K, ta, tb, acc, tanh, pad } = c;
  const r = rng(seed + M * 7 + N * 13 + K * 17);
  const [aRows, aCols] = ta ? [K, M] : [M, K];
  const [bRows, bCols] = tb ? [N, K] : [K, N];
  const lda = aCols + pad, ldb = bCols + pad, ldc = N + pad;
  const A = Float32Array.from({ length: Math.max(aRows * lda, 1) }, r);
  const B = Float32Array.from({ length: Math.max(bRows * ldb, 1) }, r);
  const C = new Float32Array(Math.max(M * ldc, 1));
  for (let i = 0; i < C.length; i++) C[i] = acc ? r() : NaN;
  // Padding columns of C hold a sentinel that must survive.
  for (let i = 0; i < M; i++) for (let j = N; j < ldc; j++) C[i * ldc + j] = 12345;
  const C0 = Float32Array.from(C);
  const a = (i: number, k: number) => (ta ? A[k * lda + i] : A[i * lda + k]);
  const b = (k: number, j: number) => (tb ? B[j * ldb + k] : B[k * ldb + j]);
  (packed ? native._gemmPacked : native._gemm)(M, N, K, A, lda, ta, B, ldb, tb, C, ldc, acc, tanh);
  let errMax = 0;
  let bad = '';
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = acc ? C0[i * ldc + j] : 0;
      let mag = Math.abs(s);
      for (let k = 0; k < K; k++) {
        s += a(i, k) * b(k, j);
        mag += Math.abs(a(i, k) * b(k, j));
      }
      const want = tanh ? Math.tanh(s) : s;
      const got = C[i * ldc + j];
      const err = Math.abs(got - want) / Math.max(mag, 1e-3);
      if (!(err <= 1e-5) && !bad) bad = `C[${i},${j}] = ${got}, want ${want}`;
      errMax = Math.max(errMax, err);
    }
    for (let j = N; j < ldc; j++) if (C[i * ldc + j] !== 12345 && !bad) bad = `padding C[${i},${j}] changed`;
  }
  expect(bad).toBe('');
  return C;
}

/** The error f throws. The addon's errors come from Node's main realm, so jest's toThrow(Class) fails on them. */
function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw');
}
const throwsA = (name: string, f: () => unknown) => expect(thrown(f).name).toBe(name);

const withIsa = (isa: string, body: () => void) => () => {
  native.setIsa(isa);
  try {
    body();
  } finally {
    native.setIsa('auto');
  }
};

describe('ISA selection', () => {
  it('lists the supported ISAs best first, ending with scalar, and the active one among them', () => {
    expect(isas[isas.length - 1]).toBe('scalar');
    expect(isas).toContain(native.isa());
  });

  it('switches and restores ISAs, refusing unknown or unsupported ones with the reason', () => {
    for (const isa of isas) {
      native.setIsa(isa);
      expect(native.isa()).toBe(isa);
    }
    native.setIsa('auto');
    expect(native.isa()).toBe(isas[0]);
    expect(() => native.setIsa('sse9')).toThrow(/unknown ISA 'sse9'/);
    for (const isa of ['avx2', 'avx512'].filter((x) => !isas.includes(x))) {
      expect(() => native.setIsa(isa)).toThrow(/supported/);
    }
    throwsA('TypeError', () => native.setIsa(3));
    expect(native.isa()).toBe(isas[0]);
  });

  it('sets the thread count and rejects bad counts', () => {
    const before = native.numThreads();
    native.setNumThreads(3);
    expect(native.numThreads()).toBe(3);
    native.setNumThreads(before);
    for (const bad of [0, -1, 1.5, NaN, 2000]) throwsA('RangeError', () => native.setNumThreads(bad));
    throwsA('TypeError', () => native.setNumThreads('2'));
  });
});

describe.each(isas)('GEMM (%s)', (isa) => {
  const [mr, nr] = TILE[isa];
  const edge = [1, 2, 3, mr - 1, mr, mr + 1, nr - 1, nr, nr + 1, 17, 31, 33, 64, 65].filter((x) => x > 0);

  it(
    'matches float64 on edge sizes, every transpose pair, accumulate, padding and the tanh epilogue',
    withIsa(isa, () => {
      let n = 0;
      for (const M of edge)
        for (const N of edge) {
          const K = edge[(M * 3 + N) % edge.length];
          const ta = n % 2 === 1, tb = (n >> 1) % 2 === 1;
          const flags = { ta, tb, acc: n % 3 === 0, tanh: n % 5 === 0, pad: n % 4 === 0 ? 3 : 0 };
          checkGemm({ M, N, K, ...flags }, n % 7 === 0, n);
          n++;
        }
    }),
  );

  it(
    'crosses the K, M and N block boundaries',
    withIsa(isa, () => {
      const shapes: [number, number, number][] = [
        [100, 129, 257],
        [257, 33, 300],
        [70, 1100, 40],
        [33, 100, 513],
      ];
      let n = 0;
      for (const [M, N, K] of shapes)
        for (const ta of [false, true])
          for (const tb of [false, true]) {
            checkGemm({ M, N, K, ta, tb, acc: n % 2 === 0, tanh: n % 3 === 0, pad: n % 4 === 1 ? 5 : 0 }, n % 2 === 1, n);
            n++;
          }
    }),
  );

  it(
    'K = 0 zeroes or keeps C and still applies the epilogue; empty M or N touches nothing',
    withIsa(isa, () => {
      const C = Float32Array.from([NaN, 2, NaN, 2]);
      native._gemm(2, 2, 0, new Float32Array(0), 1, false, new Float32Array(0), 2, false, C, 2, false, true);
      expect(Array.from(C)).toEqual([0, 0, 0, 0]);
      const D = Float32Array.from([0.5, -1, 2, 0]);
      native._gemmPacked(2, 2, 0, new Float32Array(0), 1, false, new Float32Array(0), 2, false, D, 2, true, true);
      [0.5, -1, 2, 0].forEach((x, i) => expect(Math.abs(D[i] - Math.tanh(x))).toBeLessThanOrEqual(4e-7 * Math.abs(Math.tanh(x))));
      const E = Float32Array.from([7]);
      native._gemm(0, 1, 4, new Float32Array(0), 4, false, new Float32Array(4), 1, false, E, 1, false, false);
      expect(E[0]).toBe(7);
    }),
  );

  it(
    'gives bitwise identical results on 1, 2 and 3 threads',
    withIsa(isa, () => {
      const before = native.numThreads();
      // Each above the native parallel threshold (2^20 multiply-adds), so 2 and 3 threads split it.
      const shapes: Case[] = [
        { M: 64, N: 512, K: 300, ta: false, tb: true, acc: true, tanh: true, pad: 0 },
        { M: 700, N: 70, K: 64, ta: true, tb: false, acc: false, tanh: false, pad: 1 },
        { M: 5, N: 1000, K: 330, ta: false, tb: false, acc: false, tanh: false, pad: 0 },
        // A weight gradient's shape (K > M, N): split by rows over one packed copy of B.
        { M: 33, N: 65, K: 1100, ta: true, tb: false, acc: true, tanh: false, pad: 1 },
        { M: 40, N: 64, K: 512, ta: true, tb: false, acc: false, tanh: false, pad: 0 },
        { M: 17, N: 129, K: 777, ta: false, tb: true, acc: false, tanh: false, pad: 0 },
      ];
      try {
        for (const c of shapes)
          for (const packed of [false, true]) {
            const results = [1, 2, 3].map((t) => {
              native.setNumThreads(t);
              return Buffer.from(checkGemm(c, packed).buffer).toString('hex');
            });
            expect(results[1]).toBe(results[0]);
            expect(results[2]).toBe(results[0]);
          }
      } finally {
        native.setNumThreads(before);
      }
    }),
  );

  it(
    'small products, read in place, give the same bits as packed ones',
    withIsa(isa, () => {
      // gemm reads op(A) in place when it has at most 4096 elements (op(B) too when stored as is
      // and at most 16384), else packs it: with K = 100, mr rows are read in place and 48 rows
      // packed. The first mr rows of C must not depend on which path computed them.
      const K = 100, big = 48;
      let n = 0;
      for (const N of [nr - 1, 65, 100, 200])
        for (const ta of [false, true])
          for (const tb of [false, true])
            for (const prepacked of [false, true]) {
              const r = rng(n + 1);
              const acc = n % 2 === 0, tanh = n % 3 === 0;
              const lda = ta ? big : K, ldb = tb ? K : N;
              const A = Float32Array.from({ length: big * K }, r);
              const B = Float32Array.from({ length: K * N }, r);
              const C0 = Float32Array.from({ length: big * N }, r);
              const run = (M: number) => {
                const C = Float32Array.from(C0);
                (prepacked ? native._gemmPacked : native._gemm)(M, N, K, A, lda, ta, B, ldb, tb, C, N, acc, tanh);
                return Buffer.from(C.buffer, 0, mr * N * 4).toString('hex');
              };
              expect(run(mr)).toBe(run(big));
              n++;
            }
    }),
  );

  it(
    'a single row gets the same bits from the row kernel (prepacked B) as from a tile',
    withIsa(isa, () => {
      // _gemmPacked with M = 1 takes gemm_row, the recurrence's kernel for a batch of 1; _gemm
      // with M = 1 a one-row tile. Narrow last vectors included (N = 100: 4 columns past 96).
      const K = 100;
      let n = 0;
      for (const N of [1, 4, 8, 9, 16, 17, nr - 1, nr + 4, 65, 100, 129])
        for (const ta of [false, true]) {
          const r = rng(n + 7);
          const acc = n % 2 === 0, tanh = n % 3 === 0;
          const A = Float32Array.from({ length: K * 2 }, r);
          const B = Float32Array.from({ length: K * N }, r);
          const C0 = Float32Array.from({ length: N }, r);
          const run = (packed: boolean) => {
            const C = Float32Array.from(C0);
            (packed ? native._gemmPacked : native._gemm)(1, N, K, A, ta ? 2 : K, ta, B, N, false, C, N, acc, tanh);
            return Buffer.from(C.buffer).toString('hex');
          };
          expect(run(true)).toBe(run(false));
          n++;
        }
    }),
  );

  it(
    'grouped rows (a batch shard read in place) give the same bits as the rows copied together',
    withIsa(isa, () => {
      // A's M rows or B's K rows in groups of g rows, groups gapped by NaN-filled rows: the
      // product must read exactly the grouped rows, through the packed and the in-place sizes,
      // runs cut mid-panel (g not a multiple of mr) and several k blocks (K = 300).
      let n = 0;
      for (const [M, N, K] of [[mr + 1, nr + 1, 33], [2, 65, 17], [35, 33, 300], [130, 17, 9], [1, nr, 65]])
        for (const g of [1, 3, mr, 17])
          for (const prepacked of [false, true]) {
            const r = rng(++n);
            const lda = K + 1, ldb = N + 2;
            const grouped = (rows: number, cols: number, ld: number) => {
              const groupLd = g * ld + 2 * ld;
              const data = new Float32Array(Math.ceil(rows / g) * groupLd).fill(NaN);
              const dense = new Float32Array(rows * ld);
              for (let i = 0; i < rows; i++)
                for (let j = 0; j < cols; j++) data[Math.floor(i / g) * groupLd + (i % g) * ld + j] = dense[i * ld + j] = r();
              return { data, dense, groupLd };
            };
            const A = grouped(M, K, lda), B = grouped(K, N, ldb);
            const C0 = Float32Array.from({ length: M * N }, r);
            const f = prepacked ? native._gemmPacked : native._gemm;
            const hex = (C: Float32Array) => Buffer.from(C.buffer).toString('hex');
            const want = Float32Array.from(C0);
            f(M, N, K, A.dense, lda, false, B.dense, ldb, false, want, N, n % 2 === 0, n % 3 === 0);
            const byA = Float32Array.from(C0);
            f(M, N, K, A.data, lda, false, B.dense, ldb, false, byA, N, n % 2 === 0, n % 3 === 0, g, A.groupLd, 0, 0);
            const byB = Float32Array.from(C0);
            f(M, N, K, A.dense, lda, false, B.data, ldb, false, byB, N, n % 2 === 0, n % 3 === 0, 0, 0, g, B.groupLd);
            expect(hex(byA)).toBe(hex(want));
            expect(hex(byB)).toBe(hex(want));
          }
    }),
  );

  it(
    'holds for random shapes (property)',
    withIsa(isa, () => {
      fc.assert(
        fc.property(
          fc.record({
            M: fc.integer({ min: 1, max: 80 }),
            N: fc.integer({ min: 1, max: 80 }),
            K: fc.integer({ min: 0, max: 80 }),
            ta: fc.boolean(),
            tb: fc.boolean(),
            acc: fc.boolean(),
            tanh: fc.boolean(),
            pad: fc.integer({ min: 0, max: 3 }),
          }),
          fc.boolean(),
          (c, packed) => {
            checkGemm(c, packed);
          },
        ),
        { numRuns: 60, seed: 42 },
      );
    }),
  );
});

it('SIMD GEMM results are close to the scalar ones', () => {
  const c: Case = { M: 37, N: 91, K: 300, ta: false, tb: true, acc: true, tanh: false, pad: 0 };
  const results = isas.map((isa) => {
    native.setIsa(isa);
    return checkGemm(c, false);
  });
  native.setIsa('auto');
  for (const r of results)
    for (let i = 0; i < r.length; i++) expect(Math.abs(r[i] - results[results.length - 1][i])).toBeLessThan(1e-4);
});

const f32 = (x: number) => Math.fround(x);
const tanhSweep = (() => {
  const xs = [0, -0, 1e-30, -1e-30, 1e-4, -1e-4, 0.5, -0.5, 9, -9, 20, -20, Infinity, -Infinity, 1e-45, -1e-45, 1e-40, 3e-39, 88.7, -88.7, 3.4e38];
  for (let e = -45; e <= 2; e += 0.01) xs.push(f32(10 ** e), f32(-(10 ** e)));
  for (let x = -10; x <= 10; x += 0.0007) xs.push(f32(x));
  return Float32Array.from(xs);
})();

describe.each(isas)('row kernels (%s)', (isa) => {
  beforeAll(() => native.setIsa(isa));
  afterAll(() => native.setIsa('auto'));

  it('tanh is within 4e-7 relative of float64 over the float range, tails included', () => {
    for (const len of [tanhSweep.length, 1, 7, 15, 17, 33]) {
      const x = tanhSweep.slice(0, len);
      const y = Float32Array.from(x);
      native._tanh(y);
      for (let i = 0; i < len; i++) {
        const want = Math.tanh(x[i]);
        const err = want === 0 ? Math.abs(y[i]) : Math.abs(y[i] - want) / Math.abs(want);
        if (!(err <= 4e-7)) throw new Error(`tanh(${x[i]}) = ${y[i]}, want ${want} (rel ${err})`);
        expect(Object.is(y[i], -0)).toBe(Object.is(x[i], -0));
      }
    }
  });

  function xentReference(z: Float32Array, target: number, scale: number): { loss: number; grad: number[] } {
    const mx = Math.max(...z);
    let s = 0;
    for (const v of z) s += Math.exp(v - mx);
    return {
      loss: Math.log(s) - (z[target] - mx),
      grad: Array.from(z, (v, i) => scale * (Math.exp(v - mx) / s - (i === target ? 1 : 0))),
    };
  }

  it('softmax cross-entropy matches float64, large logits and K = 1 included', () => {
    const r = rng(7);
    for (let t = 0; t < 300; t++) {
      const k = t < 5 ? 1 : 1 + ((t * 37) % 200);
      const spread = t % 3 === 0 ? 160 : 10;
      const z = Float32Array.from({ length: k }, () => r() * spread);
      const target = t % k;
      const scale = t % 2 ? 1 : 1 / 64;
      const ref = xentReference(z, target, scale);
      const out = Float32Array.from(z);
      const loss = native._softmaxXent(out, target, scale);
      expect(Math.abs(loss - ref.loss)).toBeLessThanOrEqual(1e-6 * Math.max(1, ref.loss));
      for (let i = 0; i < k; i++) expect(Math.abs(out[i] - ref.grad[i])).toBeLessThanOrEqual(1e-6 * scale);
    }
  });

  it('an ignored target (-1) zeroes the row and returns 0', () => {
    const z = Float32Array.from([1, 2, 3]);
    expect(native._softmaxXent(z, -1, 1)).toBe(0);
    expect(Array.from(z)).toEqual([0, 0, 0]);
  });

  it('softmax with a temperature matches float64 and sums to 1', () => {
    const r = rng(3);
    for (const k of [1, 2, 15, 16, 17, 100, 1000]) {
      for (const invT of [1, 0.25, 4]) {
        const z = Float32Array.from({ length: k }, () => r() * 160);
        const mx = Math.max(...z);
        const e = Array.from(z, (v) => Math.exp((v - mx) * invT));
        const s = e.reduce((a, b) => a + b, 0);
        const out = Float32Array.from(z);
        native._softmax(out, invT);
        let total = 0;
        for (let i = 0; i < k; i++) {
          expect(Math.abs(out[i] - e[i] / s)).toBeLessThanOrEqual(1e-6 * Math.max(e[i] / s, 1e-3));
          total += out[i];
        }
        expect(Math.abs(total - 1)).toBeLessThan(1e-5);
      }
    }
  });

  it('softmaxRows: every row as _softmax makes it, on 1 and 2 threads, in rows split over the pool', () => {
    const r = rng(11);
    const before = native.numThreads();
    try {
      for (const [rows, K] of [[1, 1], [3, 17], [40000, 3], [257, 256]]) {
        const z = Float32Array.from({ length: rows * K }, () => r() * 40);
        const want = Float32Array.from(z);
        for (let i = 0; i < rows; i++) native._softmax(want.subarray(i * K, (i + 1) * K), 1);
        for (const threads of [1, 2]) {
          native.setNumThreads(threads);
          const got = Float32Array.from(z);
          native.softmaxRows(got, K);
          expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer))).toBe(true);
        }
      }
    } finally {
      native.setNumThreads(before);
    }
  });
});

describe('bad arguments throw, never crash', () => {
  const A = new Float32Array(6), B = new Float32Array(6), C = new Float32Array(4);
  const good = [2, 2, 3, A, 3, false, B, 2, false, C, 2, false, false];
  const variant = (i: number, v: unknown) => good.map((x, j) => (j === i ? v : x));

  it.each(['_gemm', '_gemmPacked'])('%s validates dimensions, strides, types and lengths', (name) => {
    const f = native[name];
    expect(() => f(...good)).not.toThrow();
    throwsA('TypeError', () => f(...good.slice(0, 12)));
    throwsA('RangeError', () => f(...variant(0, -1)));
    throwsA('RangeError', () => f(...variant(1, 1.5)));
    throwsA('TypeError', () => f(...variant(2, '3')));
    throwsA('TypeError', () => f(...variant(3, new Float64Array(6))));
    throwsA('TypeError', () => f(...variant(3, [0, 0, 0, 0, 0, 0])));
    throwsA('RangeError', () => f(...variant(4, 2))); // lda < K
    throwsA('RangeError', () => f(...variant(4, 4))); // A too short for its stride
    throwsA('TypeError', () => f(...variant(5, 1)));
    throwsA('RangeError', () => f(...variant(6, new Float32Array(5))));
    throwsA('RangeError', () => f(...variant(9, new Float32Array(3))));
    throwsA('RangeError', () => f(...variant(10, 1)));
    throwsA('RangeError', () => f(...variant(0, 2 ** 40)));
    throwsA('RangeError', () => f(...variant(2, 2 ** 31 - 1)));
    // Grouped rows: A's 2 rows as 2 groups of 1, 4 floats apart, need 7 floats; a transposed
    // operand cannot be grouped.
    expect(() => f(...good.slice(0, 3), new Float32Array(7), ...good.slice(4), 1, 4, 0, 0)).not.toThrow();
    throwsA('RangeError', () => f(...good, 1, 5, 0, 0));
    throwsA('RangeError', () => f(...variant(5, true), 1, 3, 0, 0));
    throwsA('TypeError', () => f(...good, 1, 3));
  });

  it('row kernels validate their arguments', () => {
    throwsA('TypeError', () => native._tanh(new Float64Array(2)));
    throwsA('TypeError', () => native._tanh());
    throwsA('RangeError', () => native._softmaxXent(new Float32Array(3), 3, 1));
    throwsA('RangeError', () => native._softmaxXent(new Float32Array(3), 0.5, 1));
    throwsA('RangeError', () => native._softmaxXent(new Float32Array(0), 0, 1));
    throwsA('TypeError', () => native._softmaxXent(new Float32Array(3), '0', 1));
    throwsA('RangeError', () => native._softmax(new Float32Array(3), 0));
    throwsA('RangeError', () => native._softmax(new Float32Array(3), Infinity));
    throwsA('TypeError', () => native._softmax([1, 2], 1));
    throwsA('RangeError', () => native.softmaxRows(new Float32Array(7), 2)); // not whole rows
    throwsA('RangeError', () => native.softmaxRows(new Float32Array(4), 0));
    throwsA('TypeError', () => native.softmaxRows(new Float64Array(4), 2));
    throwsA('TypeError', () => native.softmaxRows(new Float32Array(4)));
  });
});
