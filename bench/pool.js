'use strict';
/**
 * setNumThreads for the benchmarks, working around a start-up race of the native thread pool
 * (native/thread_pool.cc): a new worker reads the region generation only once it is running, so a
 * region published before that — the first native call after the pool is created or resized — is
 * missed, and the caller waits for it forever. Pausing after every creation or resize lets the
 * workers start first. Remove this once the pool hands each worker the generation at creation.
 */
const { numThreads, setNumThreads } = require('../dist');

let settled = false;

function useThreads(n) {
  // numThreads() itself creates the pool on first use, so the first call always pauses.
  if (settled && numThreads() === n) return;
  setNumThreads(n);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  settled = true;
}

module.exports = { useThreads };
