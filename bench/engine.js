#!/usr/bin/env node
'use strict';
/**
 * `node bench/engine.js [options]`: the recurrent layer engine's speed (issue 10).
 *
 * Times one layerForward + layerBackward (full BPTT) of the native layer API per workload, ISA
 * and thread count, and reports the median ms, GFLOP/s and % of the FMA peak measured in the
 * same run with the same thread count. The softmax head of issue 10's workloads is not part of
 * the layer API, so the FLOP count leaves out its H·K term:
 *   3 · 2·T·B·(G·D·H + G·H·H),  G = 4 (LSTM), 3 (GRU)
 * (each forward product and two of its size in backward). Token inputs make the input projection
 * a gather and leave out dW_ih's product and dx, so L1 computes 3 · 2·T·B·G·H·H of it.
 *
 * --profile runs each workload again in a child process with BPTT_ENGINE_PROFILE=1 and reports
 * the engine's phase timers (native/engine/profile.h): medians over the steps, on the calling
 * thread. --memory measures the peak RSS growth of an L2 step in a fresh process.
 *
 * Build first: `npx node-gyp rebuild && npm run build:ts`.
 */
const os = require('os');
const path = require('path');
const { spawnSync, execFileSync } = require('child_process');
const { makeRandom } = require('./workloads');

const WORKLOADS = {
  L1: { name: 'L1', cell: 'lstm', inputs: 'tokens', D: 65, H: 256, T: 64, B: 32 },
  L2: { name: 'L2', cell: 'lstm', inputs: 'dense', D: 256, H: 512, T: 100, B: 64 },
  G2: { name: 'G2', cell: 'gru', inputs: 'dense', D: 256, H: 512, T: 100, B: 64 },
};
const GATES = { lstm: 4, gru: 3, tanh: 1, relu: 1 };

function flops(w) {
  const G = GATES[w.cell];
  const { T, B, D, H } = w;
  const counted = 3 * 2 * T * B * (G * D * H + G * H * H);
  const actual = w.inputs === 'tokens' ? 3 * 2 * T * B * G * H * H : counted;
  return { counted, actual };
}

/**
 * Bytes a forward + backward must hold at once, float32: the weights and their gradients
 * (2·G·H·(D + H + 2)), the input and its gradient (2·T·B·D; tokens: T·B int32, no gradient), the
 * output and its upstream gradient (2·T·B·H), and what backward needs from forward: the G
 * activated gates and one more value per unit (LSTM's c_t, GRU's h W_hn + b_hn), T·B·(G + 1)·H.
 */
function stepMemory(w) {
  const G = GATES[w.cell];
  const { T, B, D, H } = w;
  const tokens = w.inputs === 'tokens';
  const parts = {
    weightsAndGrads: 4 * 2 * G * H * (D + H + 2),
    inputAndGrad: 4 * T * B * (tokens ? 1 : 2 * D),
    outputAndGrad: 4 * 2 * T * B * H,
    saved: 4 * T * B * (G + 1) * H,
  };
  const total = Object.values(parts).reduce((a, b) => a + b, 0);
  return { formula: `4 bytes × (2·G·H·(D + H + 2) + ${tokens ? 'T·B' : '2·T·B·D'} + 2·T·B·H + T·B·(G + 1)·H)`, parts, total };
}

/** Weights uniform in ±1/sqrt(H) (PyTorch's init), inputs N(0, 1) or ids, dy uniform in ±1. */
function makeProblem(lib, w, seed = 99) {
  const rng = makeRandom(seed);
  const spec = { cell: w.cell, inputSize: w.D, hiddenSize: w.H };
  const bound = 1 / Math.sqrt(w.H);
  const weights = {};
  for (const [name, shape] of Object.entries(lib.layerParameterShapes(spec))) {
    const a = new Float32Array(shape.reduce((x, y) => x * y, 1));
    for (let i = 0; i < a.length; i++) a[i] = (2 * rng.next() - 1) * bound;
    weights[name] = a;
  }
  const rows = w.T * w.B;
  let input;
  if (w.inputs === 'tokens') {
    const ids = new Int32Array(rows);
    for (let i = 0; i < rows; i++) ids[i] = rng.int(w.D);
    input = { kind: 'tokens', data: ids };
  } else {
    const x = new Float32Array(rows * w.D);
    for (let i = 0; i < x.length; i++) x[i] = rng.normal();
    input = { kind: 'dense', data: x };
  }
  const dy = new Float32Array(rows * w.H);
  for (let i = 0; i < dy.length; i++) dy[i] = 2 * rng.next() - 1;
  return { spec, weights, batch: { steps: w.T, batch: w.B, input }, dy };
}

/** One step: forward, full BPTT, the saved values freed. Returns [forward ms, backward ms]. */
function step(native, p) {
  const t0 = process.hrtime.bigint();
  const out = native.layerForward(p.spec, p.weights, p.batch);
  const t1 = process.hrtime.bigint();
  native.layerBackward(p.spec, p.weights, out.saved, { dy: p.dy });
  const t2 = process.hrtime.bigint();
  out.saved.dispose();
  return [Number(t1 - t0) / 1e6, Number(t2 - t1) / 1e6];
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Steps after one warm-up until both minimums are reached. */
function timeSteps(native, p, minSamples, minMs) {
  step(native, p);
  const fwd = [];
  const bwd = [];
  let spent = 0;
  while (fwd.length < minSamples || spent < minMs) {
    const [f, b] = step(native, p);
    fwd.push(f);
    bwd.push(b);
    spent += f + b;
  }
  const total = fwd.map((f, i) => f + bwd[i]);
  return { ms: median(total), bestMs: Math.min(...total), forwardMs: median(fwd), backwardMs: median(bwd), samples: total.length };
}

// ---- child modes (run in fresh processes) ----

/** --child-profile W isa threads steps: steps with the engine's timers on (set by the parent). */
function childProfile([name, isa, threads, steps]) {
  const lib = require('../dist');
  lib.setIsa(isa);
  lib.setNumThreads(Number(threads));
  const p = makeProblem(lib, WORKLOADS[name]);
  for (let i = 0; i <= Number(steps); i++) step(lib.backends.native, p);
}

/** --child-memory W isa threads: peak RSS growth over three steps, as JSON on stdout. */
function childMemory([name, isa, threads]) {
  const lib = require('../dist');
  lib.setIsa(isa);
  lib.setNumThreads(Number(threads));
  const w = WORKLOADS[name];
  global.gc();
  const rss0 = process.memoryUsage.rss();
  const maxRss0 = process.resourceUsage().maxRSS * 1024;
  const p = makeProblem(lib, w);
  // Collected between steps: each step's JS outputs (y, dx, gradients) are garbage after it, and
  // V8 would otherwise keep several steps' worth before its next collection.
  for (let i = 0; i < 3; i++) {
    step(lib.backends.native, p);
    global.gc();
  }
  const maxRss = process.resourceUsage().maxRSS * 1024;
  const required = stepMemory(w);
  process.stdout.write(JSON.stringify({ peakGrowth: maxRss - rss0, upperBound: maxRss === maxRss0, required, ratio: (maxRss - rss0) / required.total }) + '\n');
}

const PHASES = ['project', 'recur_gemm', 'pointwise', 'weight_grads', 'input_grads'];

function profileRun(name, isa, threads, steps, clock) {
  const r = spawnSync(process.execPath, [__filename, '--child-profile', name, isa, String(threads), String(steps)], {
    env: { ...process.env, BPTT_ENGINE_PROFILE: clock === 'cpu' ? 'cpu' : '1' },
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`profile child failed: ${r.stderr}`);
  const calls = { forward: [], backward: [] };
  for (const line of r.stderr.split('\n')) {
    const m = /^bptt-engine-profile (.*)$/.exec(line);
    if (m) {
      const c = JSON.parse(m[1]);
      calls[c.call].push(c);
    }
  }
  // The first forward and backward are the warm-up.
  const out = {};
  for (const call of ['forward', 'backward']) {
    const rows = calls[call].slice(1);
    if (!rows.length) throw new Error(`no ${call} profile lines from the child`);
    const ms = (k) => median(rows.map((c) => c[k])) / 1e6;
    const phases = Object.fromEntries(PHASES.map((k) => [k, ms(k)]));
    const wall = ms('wall_ns');
    const timed = median(rows.map((c) => PHASES.reduce((a, k) => a + c[k], 0))) / 1e6;
    out[call] = { wall, phases, other: wall - timed };
  }
  return out;
}

// ---- main ----

function parseArgs(argv) {
  const opts = { workloads: Object.keys(WORKLOADS), isas: null, threads: [1, 2], quick: false, profile: false, memory: false, clock: 'wall', time: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i].split(',').filter(Boolean);
    };
    if (a === '--workloads') opts.workloads = value();
    else if (a === '--isa') opts.isas = value();
    else if (a === '--threads') opts.threads = value().map(Number);
    else if (a === '--quick') opts.quick = true;
    else if (a === '--profile') opts.profile = true;
    else if (a === '--memory') opts.memory = true;
    else if (a === '--cpu-clock') opts.clock = 'cpu';
    else if (a === '--no-timing') opts.time = false;
    else throw new Error(`unknown option ${a} (have --workloads L1,L2,G2 --isa avx512,avx2,scalar --threads 1,2 --quick --profile [--cpu-clock] --memory --no-timing)`);
  }
  for (const w of opts.workloads) if (!WORKLOADS[w]) throw new Error(`unknown workload ${w}`);
  for (const t of opts.threads) if (!Number.isInteger(t) || t < 1 || t > 64) throw new Error(`bad thread count ${t}`);
  return opts;
}

function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (i < 3 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(headers), widths.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

function gitCommit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: __dirname, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '?';
  }
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  let lib;
  try {
    lib = require('../dist');
    lib.isa();
  } catch (err) {
    console.error(`bench/engine.js needs the built package: run \`npx node-gyp rebuild && npm run build:ts\` first.\n${err.message}`);
    process.exit(1);
  }
  const { _fmaPeak: fmaPeak, _coreRoundTrip: coreRoundTrip } = require('../dist/native').addon();
  // What the machine gives each workload (see bench/README.md, "Two placements of the two vCPUs"):
  // the core-to-core round trip of a cache line and a short FMA probe on the most threads timed.
  const maxThreads = Math.max(...opts.threads);
  const machineState = () => `round trip ${Math.round(coreRoundTrip(opts.quick ? 5000 : 20000))} ns, ${maxThreads}t FMA ${fmaPeak(200, maxThreads).toFixed(0)} GFLOP/s`;
  const isas = opts.isas ?? [lib.supportedIsas()[0]];
  for (const i of isas) if (!lib.supportedIsas().includes(i)) throw new Error(`ISA ${i} is not supported here`);
  const [minSamples, minMs, peakRuns, peakMs, profileSteps] = opts.quick ? [3, 1000, 2, 200, 3] : [7, 4000, 3, 500, 7];

  const peakThreads = [...new Set([1, ...opts.threads])];
  const measurePeak = (t) => Math.max(...Array.from({ length: peakRuns }, () => fmaPeak(peakMs, t)));
  const peak = Object.fromEntries(peakThreads.map((t) => [t, measurePeak(t)]));
  console.log(`bptt engine bench  ${new Date().toISOString()}  commit ${gitCommit()}  ${os.cpus()[0].model.trim()}, ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`FMA peak at start: ${peakThreads.map((t) => `${t}t ${peak[t].toFixed(1)}`).join(', ')} GFLOP/s`);

  // Before anything large is allocated here: Linux carries a parent's RSS high-water mark into an
  // exec'd child's maxRSS, so a probe spawned late would report this process's peak, not its own.
  let memory;
  if (opts.memory) {
    const out = execFileSync(process.execPath, ['--expose-gc', __filename, '--child-memory', 'L2', isas[0], String(maxThreads)], { encoding: 'utf8' });
    memory = JSON.parse(out);
  }

  const results = [];
  for (const name of opts.time ? opts.workloads : []) {
    const w = WORKLOADS[name];
    const p = makeProblem(lib, w);
    const before = machineState();
    for (const isa of isas) {
      for (const t of opts.threads) {
        lib.setIsa(isa);
        lib.setNumThreads(t);
        const r = timeSteps(lib.backends.native, p, minSamples, minMs);
        results.push({ workload: name, isa, threads: t, ...r });
        process.stdout.write(`  ${name} ${isa} ${t}t: ${r.ms.toFixed(2)} ms\n`);
      }
    }
    console.log(`  ${name} machine before: ${before}; after: ${machineState()}`);
  }
  lib.setIsa('auto');
  const peakEnd = Object.fromEntries(peakThreads.map((t) => [t, measurePeak(t)]));
  for (const t of peakThreads) peak[t] = Math.max(peak[t], peakEnd[t]);
  console.log(`FMA peak at end: ${peakThreads.map((t) => `${t}t ${peakEnd[t].toFixed(1)}`).join(', ')} GFLOP/s (using the higher of start and end)\n`);

  if (results.length) {
    console.log('Median ms of layerForward + layerBackward (full BPTT), float32; GFLOP/s on 3·2·T·B·(G·D·H + G·H·H)');
    const rows = results.map((r) => {
      const f = flops(WORKLOADS[r.workload]);
      const gflops = f.counted / r.ms / 1e6;
      const bestPct = (100 * f.counted) / r.bestMs / 1e6 / peak[r.threads];
      return [r.workload, r.isa, r.threads, r.ms.toFixed(2), r.forwardMs.toFixed(2), r.backwardMs.toFixed(2), gflops.toFixed(1), ((100 * gflops) / peak[r.threads]).toFixed(1), r.bestMs.toFixed(2), bestPct.toFixed(1), r.samples];
    });
    console.log(table(['workload', 'isa', 'thr', 'median ms', 'fwd ms', 'bwd ms', 'GFLOP/s', '% peak', 'best ms', 'best % peak', 'samples'], rows));
  }
  for (const name of opts.workloads) {
    const w = WORKLOADS[name];
    const f = flops(w);
    const desc = `${name}: ${w.cell} ${w.inputs} D=${w.D} H=${w.H} T=${w.T} B=${w.B}, ${(f.counted / 1e9).toFixed(3)} GFLOP counted`;
    console.log(f.actual < f.counted ? `${desc}, ${(f.actual / 1e9).toFixed(3)} computed (token gather: no input product, no dx)` : desc);
  }

  if (opts.profile) {
    console.log(`\nPhase profile (BPTT_ENGINE_PROFILE, ${isas[0]}, median of ${profileSteps} steps, ms of the calling thread's ${opts.clock === 'cpu' ? 'CPU' : 'wall'} clock; % of forward + backward)`);
    const prow = [];
    for (const name of opts.workloads) {
      for (const t of opts.threads) {
        const pr = profileRun(name, isas[0], t, profileSteps, opts.clock);
        const wall = pr.forward.wall + pr.backward.wall;
        const cell = (ms) => `${ms.toFixed(2)} (${((100 * ms) / wall).toFixed(1)}%)`;
        const sum = (k) => pr.forward.phases[k] + pr.backward.phases[k];
        prow.push([name, isas[0], t, wall.toFixed(2), cell(sum('project')), cell(pr.forward.phases.recur_gemm), cell(pr.backward.phases.recur_gemm), cell(pr.forward.phases.pointwise), cell(pr.backward.phases.pointwise), cell(sum('weight_grads')), cell(sum('input_grads')), cell(pr.forward.other + pr.backward.other)]);
      }
    }
    console.log(table(['workload', 'isa', 'thr', 'step ms', 'projection', 'recur fwd', 'recur bwd', 'pointwise fwd', 'pointwise bwd', 'weight grads', 'dx', 'other'], prow));
  }

  if (memory) {
    const MiB = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    console.log(`\nPeak memory of an L2 forward + backward (fresh process, ${isas[0]}, ${maxThreads} threads):`);
    console.log(`  must hold ${MiB(memory.required.total)} = ${memory.required.formula}`);
    console.log(`  maxRSS growth ${memory.upperBound ? '<= ' : ''}${MiB(memory.peakGrowth)} = ${memory.ratio.toFixed(2)}x`);
  }
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === '--child-profile') childProfile(rest);
else if (mode === '--child-memory') childMemory(rest);
else main();
