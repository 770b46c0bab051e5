/**
 * Runs a script in a child Node process with a time bound, so that a crash (abort, segfault) or
 * a hang fails a test instead of taking Jest down. The script starts with REPO (the repository
 * root) and HOOK (test/helpers/ts-require.js, preloaded) defined, so it can require(REPO + '/lib')
 * from the TypeScript sources; worker threads it starts require(HOOK) themselves.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';

export const REPO = path.resolve(__dirname, '..', '..');
export const HOOK = path.join(__dirname, 'ts-require.js');

export interface ChildResult {
  /** Exit code, or the signal's name when a signal ended the child (SIGABRT, SIGSEGV, SIGTERM on timeout). */
  exit: string;
  stdout: string;
  stderr: string;
}

export interface ChildOptions {
  timeoutMs?: number;
  /** Address-space limit (ulimit -v) in KiB, to make large allocations fail. */
  addressSpaceKiB?: number;
  env?: Record<string, string>;
}

export function runChild(script: string, options: ChildOptions = {}): ChildResult {
  const source = `const REPO = ${JSON.stringify(REPO)}, HOOK = ${JSON.stringify(HOOK)};\n${script}`;
  const node = [process.execPath, '--expose-gc', '-r', HOOK, '-e', source];
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  if (options.env?.BPTT_ISA === undefined) delete env.BPTT_ISA;
  const [command, args] =
    options.addressSpaceKiB === undefined
      ? [node[0], node.slice(1)]
      : ['sh', ['-c', `ulimit -v ${options.addressSpaceKiB} && exec "$0" "$@"`, ...node]];
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: options.timeoutMs ?? 60_000, env, maxBuffer: 16 << 20 });
  return { exit: r.signal ?? String(r.status), stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Asserts a clean exit (code 0), showing the end of stderr when it was not. */
export function expectCleanExit(r: ChildResult): void {
  expect(r.exit === '0' ? '0' : `${r.exit}\n${r.stderr.slice(-3000)}`).toBe('0');
}

/**
 * Starts a worker thread that runs `setup` (source defining a function setup() that returns the
 * objects `call` uses as m) and then `call` (an await-able statement) in a loop, and terminates it
 * after 0 to 30 ms, six times: the process must survive every termination, whatever the job was
 * doing.
 */
export function runTerminations(setup: string, call: string): ChildResult {
  const body = `const REPO = ${JSON.stringify(REPO)}; require(${JSON.stringify(HOOK)});\n${setup}\n` +
    `(async () => { const m = setup(); require('worker_threads').parentPort.postMessage('ready'); for (;;) { ${call}; } })();`;
  return runChild(
    `
    const { Worker } = require('worker_threads');
    (async () => {
      for (const delay of [0, 1, 3, 7, 15, 30]) {
        const w = new Worker(${JSON.stringify(body)}, { eval: true });
        await new Promise((resolve) => w.once('message', resolve));
        await new Promise((resolve) => setTimeout(resolve, delay));
        await w.terminate();
      }
      setTimeout(() => console.log('survived'), 50);
    })();
  `,
    { timeoutMs: 120_000 },
  );
}
