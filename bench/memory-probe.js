'use strict';
/**
 * `node --expose-gc bench/memory-probe.js <workload> <isa> <threads>`: peak memory of training
 * steps, run by bench/run.js in a fresh process so that nothing before it has set the RSS
 * high-water mark. Prints one JSON object.
 *
 * Baseline: the process with the package and addon loaded and the thread pool started, before
 * the model and its data exist. Growth is measured from there, so it covers everything the step
 * must hold (parameters, gradients, states, logits, inputs; stepMemory in workloads.js) plus
 * whatever the implementation adds (workspace, packed weights, allocator slack).
 */
const { RNN, Tensor, setIsa, setNumThreads } = require('../dist');
const { WORKLOADS, STEP_OPTIONS, stepMemory, makeData } = require('./workloads');

const STEPS = 3;
const [name, isa, threadsArg] = process.argv.slice(2);
const w = WORKLOADS[name];
const threads = Number(threadsArg);
if (!w || !isa || !Number.isInteger(threads)) throw new Error('usage: memory-probe.js <workload> <isa> <threads>');
if (typeof global.gc !== 'function') throw new Error('run with --expose-gc');

setIsa(isa);
setNumThreads(threads);
global.gc();
const rss0 = process.memoryUsage.rss();
const maxRss0 = process.resourceUsage().maxRSS * 1024; // KiB on Linux

// The data is generated in JS and copied into native tensors; the JS copies are then dropped and
// collected, so the baseline-relative growth counts the inputs once, as the step holds them.
let data = makeData(w);
const x = w.inputs === 'tokens' ? Tensor.from(data.inputs, [w.T, w.B]) : Tensor.from(data.inputs, [w.T, w.B, w.D]);
const y = Tensor.from(data.targets, [w.T, w.B]);
data = null;
global.gc();
const rnn = new RNN({ inputSize: w.D, hiddenSize: w.H, outputSize: w.K, seed: 7 });

rnn.trainStep(x, y, STEP_OPTIONS).hT.dispose();
const rss1 = process.memoryUsage.rss();
for (let i = 1; i < STEPS; i++) rnn.trainStep(x, y, STEP_OPTIONS).hT.dispose();
const rssN = process.memoryUsage.rss();
const maxRssN = process.resourceUsage().maxRSS * 1024;

const required = stepMemory(w);
// If the steps never pushed the high-water mark above where it already was, the step's own
// peak was at most that: the growth then is an upper bound.
const peakGrowth = maxRssN - rss0;
process.stdout.write(
  JSON.stringify({
    workload: name,
    isa,
    threads,
    steps: STEPS,
    baselineRss: rss0,
    baselineMaxRss: maxRss0,
    rssGrowth: { afterFirstStep: rss1 - rss0, afterSteps: rssN - rss0 },
    peakGrowth,
    peakGrowthIsUpperBound: maxRssN === maxRss0,
    required,
    ratio: peakGrowth / required.total,
  }) + '\n',
);
