'use strict';
/**
 * Inference latency and throughput (issue 10), `npm run bench:inference`:
 *   I1  a 2-layer LSTM, H = 512, tokens D = K = 96, B = 1: one token per call with the state
 *       carried (what sampling and streaming scoring do); median µs per token.
 *   I2  `predict` on 256 sequences of length 100 with the L2 model (LSTM, dense D = 256, H = 512,
 *       K = 256 softmax per step): sequences per second, against the rows per second the training
 *       step's forward half reaches (a forward at L2's training batch, B = 64).
 * PyTorch runs the same models in the same run when a Python with torch is found (--python, or the
 * BPTT_BENCH_PYTHON environment variable, default python3): nn.LSTM + nn.Linear in
 * inference_mode, tokens one-hot encoded as our token input is (a gather of the input weights'
 * columns, which equals one-hot times the weights). Without torch the bench says so and reports
 * ours alone.
 */
const { spawnSync } = require('child_process');
const { Command } = require('commander');
const { RNN, Tensor, setNumThreads, isa } = require('../dist');
const { makeRandom } = require('./workloads');

const program = new Command()
  .option('--threads <list>', 'comma-separated thread counts', '1,2')
  .option('--python <path>', 'a Python with torch for the PyTorch rows', process.env.BPTT_BENCH_PYTHON ?? 'python3')
  .option('--quick', 'fewer samples')
  .parse();
const opts = program.opts();
const threadCounts = opts.threads.split(',').map(Number);
const SAMPLES = opts.quick ? 5 : 15;

const I1 = { cell: 'lstm', numLayers: 2, H: 512, V: 96, tokensPerSample: 200 };
const I2 = { cell: 'lstm', numLayers: 1, D: 256, H: 512, K: 256, T: 100, sequences: 256, trainBatch: 64 };

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function timeMs(fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** I1: µs per token of ours, the state carried from call to call. */
function oursI1() {
  const rnn = new RNN({ inputSize: I1.V, hiddenSize: I1.H, outputSize: I1.V, cell: I1.cell, numLayers: I1.numLayers, seed: 1 });
  const rng = makeRandom(5);
  let h = Tensor.zeros([I1.numLayers, 1, I1.H]);
  let c = Tensor.zeros([I1.numLayers, 1, I1.H]);
  const run = (n) => {
    for (let i = 0; i < n; i++) {
      const out = rnn.forward(Tensor.from(Int32Array.of(rng.int(I1.V)), [1, 1]), { h0: h, c0: c });
      h = out.hT;
      c = out.cT;
    }
  };
  run(I1.tokensPerSample); // warm-up: caches, the engine's scratch
  const samples = Array.from({ length: SAMPLES }, () => (timeMs(() => run(I1.tokensPerSample)) * 1000) / I1.tokensPerSample);
  rnn.dispose();
  return median(samples);
}

function denseInputs(T, B, D, seed) {
  const rng = makeRandom(seed);
  return Tensor.from(Float32Array.from({ length: T * B * D }, () => rng.normal()), [T, B, D]);
}

/** I2: sequences per second of predict, and of the training step's forward half at B = 64. */
function oursI2() {
  const rnn = new RNN({ inputSize: I2.D, hiddenSize: I2.H, outputSize: I2.K, cell: I2.cell, seed: 1 });
  const all = denseInputs(I2.T, I2.sequences, I2.D, 6);
  const train = denseInputs(I2.T, I2.trainBatch, I2.D, 7);
  rnn.predict(all);
  const predictMs = median(Array.from({ length: Math.max(3, SAMPLES / 3) }, () => timeMs(() => rnn.predict(all))));
  rnn.forward(train);
  const forwardMs = median(Array.from({ length: SAMPLES }, () => timeMs(() => rnn.forward(train))));
  rnn.dispose();
  return { predictSeqPerS: I2.sequences / (predictMs / 1000), forwardSeqPerS: I2.trainBatch / (forwardMs / 1000) };
}

// The same two measurements in PyTorch, as one JSON line on stdout.
const TORCH_SCRIPT = String.raw`
import json, sys, time
import torch
cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg['threads'])
torch.manual_seed(1)
def median(xs):
    s = sorted(xs); n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
out = {'version': torch.__version__}
with torch.inference_mode():
    i1 = cfg['I1']
    lstm = torch.nn.LSTM(i1['V'], i1['H'], i1['numLayers'])
    fc = torch.nn.Linear(i1['H'], i1['V'])
    eye = torch.eye(i1['V'])
    h = torch.zeros(i1['numLayers'], 1, i1['H']); c = torch.zeros_like(h)
    g = torch.Generator().manual_seed(5)
    def run(n):
        global h, c
        for _ in range(n):
            x = eye[torch.randint(i1['V'], (1,), generator=g)].view(1, 1, -1)
            y, (h, c) = lstm(x, (h, c))
            torch.softmax(fc(y), -1)
    run(i1['tokensPerSample'])
    samples = []
    for _ in range(cfg['samples']):
        t0 = time.perf_counter(); run(i1['tokensPerSample'])
        samples.append((time.perf_counter() - t0) * 1e6 / i1['tokensPerSample'])
    out['i1UsPerToken'] = median(samples)
    i2 = cfg['I2']
    lstm = torch.nn.LSTM(i2['D'], i2['H'])
    fc = torch.nn.Linear(i2['H'], i2['K'])
    x = torch.randn(i2['T'], i2['sequences'], i2['D'])
    def predict():
        y, _ = lstm(x)
        return torch.softmax(fc(y), -1)
    predict()
    samples = []
    for _ in range(max(3, cfg['samples'] // 3)):
        t0 = time.perf_counter(); predict(); samples.append(time.perf_counter() - t0)
    out['i2SeqPerS'] = i2['sequences'] / median(samples)
print(json.dumps(out))
`;

/** PyTorch's numbers at `threads`, or { missing: why }. */
function torchRun(threads) {
  const cfg = { threads, samples: SAMPLES, I1, I2 };
  const r = spawnSync(opts.python, ['-c', TORCH_SCRIPT, JSON.stringify(cfg)], { encoding: 'utf8', timeout: 600_000 });
  if (r.error) return { missing: `${opts.python}: ${r.error.message}` };
  if (r.status !== 0) return { missing: /No module named 'torch'/.test(r.stderr) ? `no torch in ${opts.python}` : r.stderr.trim().split('\n').pop() };
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const fmt = (x, d = 1) => (x === undefined ? '' : x.toFixed(d));
console.log(`bptt inference bench: kernels ${isa()}; I1 = 2-layer LSTM H=512, tokens 96, B=1, state carried; I2 = predict on 256 x 100 steps, L2's LSTM`);
const rows = [];
for (const t of threadCounts) {
  setNumThreads(t);
  const i1 = oursI1();
  const i2 = oursI2();
  const torch = torchRun(t);
  if (torch.missing) console.log(`PyTorch rows skipped at ${t} thread(s): ${torch.missing} (pass --python or BPTT_BENCH_PYTHON)`);
  rows.push({ threads: t, i1, torchI1: torch.i1UsPerToken, i2: i2.predictSeqPerS, forwardHalf: i2.forwardSeqPerS, torchI2: torch.i2SeqPerS, torchVersion: torch.version });
}
console.log('\n| threads | I1 µs/token | PyTorch I1 | ours / PyTorch | I2 seq/s | forward half seq/s | I2 / forward half | PyTorch I2 seq/s |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const ratio = r.torchI1 ? fmt(r.i1 / r.torchI1, 2) : '';
  console.log(`| ${r.threads} | ${fmt(r.i1)} | ${fmt(r.torchI1)} | ${ratio} | ${fmt(r.i2)} | ${fmt(r.forwardHalf)} | ${fmt(r.i2 / r.forwardHalf, 2)} | ${fmt(r.torchI2)} |`);
}
if (rows.some((r) => r.torchVersion)) console.log(`\nPyTorch ${rows.find((r) => r.torchVersion).torchVersion} (${opts.python})`);
