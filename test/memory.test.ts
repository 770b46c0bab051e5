import { RNN, Tensor } from '../lib';

// Bounds on resident-set growth after a warm-up, which absorbs allocator and JIT start-up costs.
const CREATE_DISPOSE_BOUND_MB = 32;
const GRADIENT_CALLS_BOUND_MB = 64;

// After a collection, Node runs external-memory finalizers from the event loop, in as many turns
// as it takes: collect and yield a few times before reading RSS.
async function rssMB(): Promise<number> {
  for (let round = 0; round < 4; round++) {
    global.gc?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage().rss / 2 ** 20;
}

describe('memory stays flat', () => {
  test(`10,000 create/dispose cycles of a 256x256 tensor grow RSS by < ${CREATE_DISPOSE_BOUND_MB} MB`, async () => {
    for (let i = 0; i < 200; i++) Tensor.zeros([256, 256]).dispose();
    const before = await rssMB();
    for (let i = 0; i < 10_000; i++) {
      const t = Tensor.from(new Float32Array([i]), [1]);
      const u = Tensor.zeros([256, 256]);
      t.dispose();
      u.dispose();
    }
    expect((await rssMB()) - before).toBeLessThan(CREATE_DISPOSE_BOUND_MB);
  });

  test(`1,000 gradient calls at H = 256 grow RSS by < ${GRADIENT_CALLS_BOUND_MB} MB`, async () => {
    const rnn = new RNN({ inputSize: 65, hiddenSize: 256, outputSize: 65, seed: 1 });
    const x = Tensor.from(Int32Array.from({ length: 16 * 4 }, (_, i) => (i * 7) % 65), [16, 4]);
    const y = Tensor.from(Int32Array.from({ length: 16 * 4 }, (_, i) => (i * 11) % 65), [16, 4]);
    const call = () => {
      const r = rnn.lossAndGradients(x, y, { truncate: 8 });
      for (const g of Object.values(r.grads)) g.dispose();
      r.hT.dispose();
    };
    for (let i = 0; i < 50; i++) call();
    const before = await rssMB();
    for (let i = 0; i < 1000; i++) call();
    expect((await rssMB()) - before).toBeLessThan(GRADIENT_CALLS_BOUND_MB);
  });

  // Needs --expose-gc (npm test passes it) to measure after a full collection.
  (global.gc ? test : test.skip)('tensors that are never disposed are reclaimed by the GC', async () => {
    for (let i = 0; i < 200; i++) Tensor.zeros([1024, 256]);
    const before = await rssMB();
    for (let i = 0; i < 2000; i++) Tensor.zeros([1024, 256]); // 1 MiB each, 2 GiB in all
    expect((await rssMB()) - before).toBeLessThan(256);
  });
});
