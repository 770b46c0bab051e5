/**
 * Issue 13, native side, threads: worker threads that each use the library, workers terminated
 * mid-job, token and target ids rewritten by another thread through a SharedArrayBuffer, a kernel
 * thread that cannot start, memory freed under a running job. Each runs in a child process with a
 * time bound (test/helpers/child.ts): before the fixes, each crashed the process.
 */
import { execFileSync } from 'child_process';
import { expectCleanExit, runChild, runTerminations } from './helpers/child';

// A model large enough that its recurrences use the kernel thread pool (T*B*H*H >= 2^20).
const MODEL = `
  const { RNN, Tensor, Optimizer } = require(REPO + '/lib');
  function model(seed) {
    const rnn = new RNN({ inputSize: 32, hiddenSize: 128, outputSize: 32, seed });
    const T = 16, B = 8;
    const x = Tensor.from(Int32Array.from({ length: T * B }, (_, i) => (i * 7 + seed) % 32), [T, B]);
    const y = Tensor.from(Int32Array.from({ length: T * B }, (_, i) => (i * 5 + 3) % 32), [T, B]);
    return { rnn, x, y, opt: new Optimizer(rnn, { kind: 'adam' }) };
  }
  function checksum(rnn) {
    let s = 0;
    for (const name of ['U', 'W', 'b', 'V', 'c']) for (const v of rnn.params[name].toArray()) s = (s * 31 + Math.fround(v) * 1e6) % 1e15;
    return s;
  }
`;

describe('worker threads', () => {
  test('two workers and the main thread create and dispose tensors, or leave them to the GC, at the same time', () => {
    const r = runChild(
      `
      const { Worker } = require('worker_threads');
      const churn = \`
        const { Tensor } = require(REPO + '/lib');
        let refused = 0;
        for (let i = 0; i < 60000; i++) {
          const t = Tensor.zeros([1 + (i % 300)]);
          if (i % 3 !== 0) try { t.dispose(); } catch (e) { refused++; }
        }
        refused;
      \`;
      const setup = 'const REPO = ' + JSON.stringify(REPO) + '; require(' + JSON.stringify(HOOK) + ');';
      const workers = [0, 1].map(() => new Worker(setup + 'require("worker_threads").parentPort.postMessage(eval(' + JSON.stringify(churn) + '))', { eval: true }));
      const results = workers.map((w) => new Promise((resolve, reject) => { w.on('message', resolve); w.on('error', reject); }));
      const mine = eval(churn);
      Promise.all(results).then((theirs) => console.log('refused', mine + theirs[0] + theirs[1]));
    `,
      { timeoutMs: 120_000 },
    );
    expectCleanExit(r);
    expect(r.stdout).toBe('refused 0\n');
  });

  test("each thread keeps its own ISA: loading the addon in a worker no longer resets the main thread's", () => {
    const r = runChild(`
      const bptt = require(REPO + '/lib');
      const { Worker } = require('worker_threads');
      bptt.setIsa('scalar');
      const w = new Worker('require(' + JSON.stringify(HOOK) + '); const bptt = require(' + JSON.stringify(REPO + '/lib') + ');' +
        'const first = bptt.isa(); bptt.setIsa("scalar"); bptt.setIsa("auto"); require("worker_threads").parentPort.postMessage(first + " " + bptt.isa());', { eval: true });
      w.on('message', (m) => console.log(m + ' | main ' + bptt.isa() + ' | best ' + bptt.supportedIsas()[0]));
    `);
    expectCleanExit(r);
    const [worker, main, best] = r.stdout.trim().split(' | ');
    expect(best).toMatch(/^best /);
    const isa = best.slice(5);
    expect(worker).toBe(`${isa} ${isa}`);
    expect(main).toBe('main scalar');
  });

  test('training in two workers and the main thread at once gives the results of training alone', () => {
    const r = runChild(
      `
      ${MODEL}
      const { Worker } = require('worker_threads');
      const train = \`(async () => {
        const m = model(1);
        for (let i = 0; i < 6; i++) {
          m.rnn.trainStep(m.x, m.y, { lr: 0.01, clipNorm: 1, optimizer: m.opt });
          await m.rnn.trainStepAsync(m.x, m.y, { lr: 0.01, clipNorm: 1, optimizer: m.opt });
        }
        return checksum(m.rnn);
      })()\`;
      const setup = 'const REPO = ' + JSON.stringify(REPO) + '; require(' + JSON.stringify(HOOK) + ');' + ${JSON.stringify(MODEL)};
      (async () => {
        const alone = await eval(train);
        const workers = [0, 1].map(() => new Worker(setup + 'eval(' + JSON.stringify(train) + ').then((s) => require("worker_threads").parentPort.postMessage(s))', { eval: true }));
        const theirs = workers.map((w) => new Promise((resolve, reject) => { w.on('message', resolve); w.on('error', reject); }));
        const together = await Promise.all([eval(train), ...theirs]);
        console.log(together.every((s) => s === alone) ? 'same' : 'different: ' + alone + ' vs ' + together.join(', '));
      })();
    `,
      { timeoutMs: 120_000 },
    );
    expectCleanExit(r);
    expect(r.stdout).toBe('same\n');
  });
});

describe('terminating a worker', () => {
  // Before: 'terminate called after throwing an instance of Napi::Error' (the job's completion
  // threw into the dying environment), 3 of 3 runs.
  test.each([
    ['trainStepAsync', 'await m.rnn.trainStepAsync(m.x, m.y, { lr: 0.01, optimizer: m.opt })'],
    ['lossAndGradientsAsync', 'await m.rnn.lossAndGradientsAsync(m.x, m.y)'],
    ['forwardAsync', 'await m.rnn.forwardAsync(m.x)'],
    ['trainStep (synchronous)', 'm.rnn.trainStep(m.x, m.y, { lr: 0.01, optimizer: m.opt })'],
  ])('during %s leaves the process running', (_name, call) => {
    const r = runTerminations(`${MODEL}\nfunction setup() { return model(2); }`, call);
    expectCleanExit(r);
    expect(r.stdout).toBe('survived\n');
  });
});

describe('ids in shared memory rewritten by another thread', () => {
  // Before: a segfault within seconds; the ids were range-checked, then read again by the kernels.
  test('every synchronous and asynchronous entry point reads a checked copy: results or RangeErrors, never a crash', () => {
    const r = runChild(
      `
      const { Worker } = require('worker_threads');
      const { backends } = require(REPO + '/lib');
      const { createEngine, nativeArgs } = require(REPO + '/lib/backends/native');
      const T = 32, B = 8, D = 40, H = 32, K = 40;
      const sab = new SharedArrayBuffer(2 * T * B * 4);
      const tokens = new Int32Array(sab, 0, T * B), targets = new Int32Array(sab, T * B * 4, T * B);
      // Alternately valid ids and ids far outside every array.
      const flipper = new Worker('const a = new Int32Array(require("worker_threads").workerData); for (;;) { a.fill(1); a.fill(1e9); a.fill(-5e8); }', { eval: true, workerData: sab });
      const p = { U: new Float32Array(H * D).fill(0.01), W: new Float32Array(H * H).fill(0.01), b: new Float32Array(H), V: new Float32Array(K * H).fill(0.01), c: new Float32Array(K) };
      const dims = { inputSize: D, hiddenSize: H, outputSize: K };
      const seq = { steps: T, batch: B, input: { kind: 'tokens', data: tokens } };
      const engine = createEngine();
      const request = (fields) => ({ D, H, K, T, B, ...p, tokens, dense: undefined, h0: undefined, hT: new Float32Array(B * H), ...fields });
      const trainFields = () => ({ targets, optimizer: { kind: 'sgd', lr: 0.01 }, out: new Float64Array(3) });
      const gradFields = () => ({ targets, gU: new Float32Array(H * D), gW: new Float32Array(H * H), gb: new Float32Array(H), gV: new Float32Array(K * H), gc: new Float32Array(K) });
      const calls = [
        () => backends.native.lossAndGradients(dims, p, seq, targets),
        () => backends.native.forward(dims, p, seq),
        () => engine.trainStep(...nativeArgs(request(trainFields()))),
        () => engine.gradients(...nativeArgs(request(gradFields()))),
        () => engine.trainStepAsync(...nativeArgs(request(trainFields()))),
        () => engine.gradientsAsync(...nativeArgs(request(gradFields()))),
        () => engine.forwardAsync(...nativeArgs(request({ states: new Float32Array(T * B * H), logits: new Float32Array(T * B * K) }))),
      ];
      const counts = { ok: 0, RangeError: 0 };
      const count = (e) => {
        if (e === undefined) counts.ok++;
        else if (e.name === 'RangeError' && / is outside \\[0, 40\\)/.test(e.message)) counts.RangeError++;
        else throw e;
      };
      (async () => {
        const start = Date.now();
        while (Date.now() - start < 3000) {
          for (const call of calls) {
            try { await call(); count(); } catch (e) { count(e); }
          }
        }
        await flipper.terminate();
        console.log(counts.ok > 0 && counts.RangeError > 0 ? 'both outcomes seen' : 'only ' + JSON.stringify(counts));
      })();
    `,
      { timeoutMs: 120_000 },
    );
    expectCleanExit(r);
    expect(r.stdout).toBe('both outcomes seen\n');
  });
});

let prlimit = true;
try {
  execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
} catch {
  prlimit = false;
}

describe('C++ exceptions of any type become JS errors', () => {
  // Before: 'terminate called after throwing an instance of std::system_error' (abort).
  (prlimit ? test : test.skip)('a kernel thread that cannot start is an Error from sync and async calls; 1 thread still works', () => {
    const r = runChild(
      `
      ${MODEL}
      const { execFileSync } = require('child_process');
      const fs = require('fs');
      const bptt = require(REPO + '/lib');
      (async () => {
        bptt.setNumThreads(1);
        const m = model(3);
        m.rnn.trainStep(m.x, m.y, { lr: 0.01, optimizer: m.opt });
        await m.rnn.trainStepAsync(m.x, m.y, { lr: 0.01, optimizer: m.opt });  // libuv's threads start now
        // Let every pending free happen first (finalizers, background sweeping): memory freed
        // after the limit is set would make room again.
        for (let i = 0; i < 3; i++) {
          global.gc();
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        // No room left for the 8 MB stack of another thread.
        const vm = Number(/VmSize:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
        execFileSync('prlimit', ['--pid', String(process.pid), '--as=' + (vm + 4096) * 1024]);
        bptt.setNumThreads(2);
        const before = m.rnn.params.W.toArray();
        for (const call of [() => m.rnn.trainStep(m.x, m.y, { lr: 0.01, optimizer: m.opt }), () => m.rnn.trainStepAsync(m.x, m.y, { lr: 0.01, optimizer: m.opt })]) {
          try { await call(); console.log('no error'); } catch (e) { console.log(e.name + ': ' + e.message); }
        }
        console.log('unchanged', Buffer.compare(Buffer.from(before.buffer), Buffer.from(m.rnn.params.W.toArray().buffer)) === 0);
        bptt.setNumThreads(1);
        m.rnn.trainStep(m.x, m.y, { lr: 0.01, optimizer: m.opt });
        console.log('1 thread trains');
      })();
    `,
      { timeoutMs: 120_000 },
    );
    expectCleanExit(r);
    const error = 'Error: native error: could not start kernel thread 1 of 1 (Resource temporarily unavailable); setNumThreads(1) runs the kernels on the calling thread alone';
    expect(r.stdout).toBe(`${error}\n${error}\nunchanged true\n1 thread trains\n`);
  });

  test('release() refuses memory an asynchronous job is using (it freed it under the job)', () => {
    const r = runChild(`
      const { addon } = require(REPO + '/lib/native');
      const { Tensor } = require(REPO + '/lib');
      const { createEngine, nativeArgs } = require(REPO + '/lib/backends/native');
      const T = 64, B = 32, D = 16, H = 256, K = 16;
      const t = (n) => Tensor.zeros([n]).data();
      const hT = t(B * H);
      const req = { D, H, K, T, B, U: t(H * D), W: t(H * H), b: t(H), V: t(K * H), c: t(K), tokens: new Int32Array(T * B), dense: undefined, h0: undefined, hT,
        states: t(T * B * H), logits: t(T * B * K) };
      (async () => {
        const job = createEngine().forwardAsync(...nativeArgs(req));
        for (const a of [hT, req.W, req.states]) {
          try { addon().release(a.buffer); console.log('released'); } catch (e) { console.log(e.code + ': ' + e.message); }
        }
        await job;
        addon().release(hT.buffer);
        console.log('released after the job', hT.length);
      })();
    `);
    expectCleanExit(r);
    const inUse = 'BPTT_IN_USE: release: an asynchronous job is using this memory; await it first\n';
    expect(r.stdout).toBe(`${inUse}${inUse}${inUse}released after the job 0\n`);
  });
});
