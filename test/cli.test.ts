import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Writable } from 'stream';
import { main } from '../lib/cli';
import { decodeSafetensors } from '../lib/train/safetensors';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(argv, { stdout, stderr });
  return { code, out: stdout.text, err: stderr.text };
}

/** The model and optimizer tensors of a checkpoint, by name. */
function weights(file: string): Map<string, Buffer> {
  const { tensors } = decodeSafetensors(fs.readFileSync(file));
  return new Map([...tensors].filter(([k]) => !k.startsWith('train.')).map(([k, t]) => [k, Buffer.from(t.bytes)]));
}

const text = 'hello world\nthis is a tiny text file\nfor the command line tests\n'.repeat(20);
const small = ['--hidden', '16', '--seq', '8', '--batch', '4'];
let dir: string;
let corpus: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-cli-'));
  corpus = path.join(dir, 'tiny.txt');
  fs.writeFileSync(corpus, text);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('bptt CLI (in process)', () => {
  it('trains a few steps, then samples and evaluates the checkpoint', async () => {
    const ck = path.join(dir, 'a.safetensors');
    const t = await run('train', corpus, ...small, '--k1', '4', '--k2', '8', '--clip', '1', '--optim', 'adam', '--lr', '0.01', '--steps', '8', '--seed', '3', '--out', ck);
    expect(t.err).toBe('');
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/TBPTT\(k1=4, k2=8\)/);
    expect(t.out).toMatch(/step 8 \(8\/8\) {2}loss \d+\.\d+ {2}smooth \d+\.\d+ {2}\d+ tok\/s {2}ETA/);
    expect(t.out).toMatch(/held-out loss \d+\.\d+ nats\/char, perplexity/);
    expect(t.out).toMatch(/sample at step/);
    expect(fs.existsSync(ck)).toBe(true);

    const s1 = await run('sample', ck, '--length', '50', '--seed', '9');
    const s2 = await run('sample', ck, '--length', '50', '--seed', '9');
    expect(s1.code).toBe(0);
    expect(s1.out).toBe(s2.out);
    expect([...s1.out.replace(/\n$/, '')].length).toBe(50);
    const primed = await run('sample', ck, '--length', '10', '--prime', 'hello', '--temperature', '0.5', '--top-k', '3', '--seed', '1');
    expect(primed.out.startsWith('hello')).toBe(true);

    const e = await run('eval', ck, corpus);
    expect(e.code).toBe(0);
    expect(e.out).toMatch(/^loss \d+\.\d+ nats\/char \(\d+\.\d+ bits\/char\), perplexity \d+\.\d+, \d+ characters predicted\n$/);
  });

  it('--resume continues a run bit-identically to an uninterrupted one', async () => {
    const whole = path.join(dir, 'whole.safetensors');
    const half = path.join(dir, 'half.safetensors');
    const resumed = path.join(dir, 'resumed.safetensors');
    const settings = [...small, '--k1', '4', '--k2', '6', '--clip', '0.5', '--optim', 'rmsprop', '--lr', '0.01', '--seed', '5'];
    expect((await run('train', corpus, ...settings, '--steps', '12', '--out', whole)).code).toBe(0);
    expect((await run('train', corpus, ...settings, '--steps', '6', '--out', half)).code).toBe(0);
    const r = await run('train', corpus, '--resume', half, '--steps', '6', '--out', resumed);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/resuming at step 6/);
    expect(weights(resumed)).toEqual(weights(whole));
  });

  it('trains on the embedded first names when no FILE is given and prints new names', async () => {
    const ck = path.join(dir, 'names.safetensors');
    const r = await run('train', '--hidden', '16', '--steps', '3', '--out', ck);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/English first names/);
    const names = r.out.split('new names, not in the training list:\n')[1];
    expect(names).toBeDefined();
  });

  it('stops on an abort signal after the current step and still saves a checkpoint', async () => {
    const ck = path.join(dir, 'stopped.safetensors');
    const controller = new AbortController();
    const stdout = new Capture();
    const stderr = new Capture();
    const stdoutWrite = stdout.write.bind(stdout);
    stdout.write = ((chunk: string) => {
      if (/^step \d+ /m.test(String(chunk))) controller.abort();
      return stdoutWrite(chunk);
    }) as typeof stdout.write;
    // 40 steps: a progress line every 2 steps; the first one aborts.
    const code = await main(['train', corpus, ...small, '--steps', '40', '--out', ck], { stdout, stderr }, { signal: controller.signal });
    expect(code).toBe(130);
    expect(stdout.text).toMatch(/stopped after 2 steps/);
    expect(fs.existsSync(ck)).toBe(true);
  });

  const bad: [string, string[]][] = [
    ['no command', []],
    ['an unknown command', ['fit']],
    ['an unknown option', ['train', '--bogus']],
    ['a non-numeric size', ['train', '--hidden', 'abc']],
    ['a zero batch', ['train', '--batch', '0']],
    ['a negative learning rate', ['train', '--lr', '-1']],
    ['an unknown optimizer', ['train', '--optim', 'lbfgs']],
    ['k2 < k1', ['train', '--k1', '8', '--k2', '4']],
    ['an unreadable training file', ['train', '/nonexistent/file.txt']],
    ['a missing checkpoint argument', ['sample']],
    ['an unreadable checkpoint', ['sample', '/nonexistent.safetensors']],
    ['a checkpoint that is not one', ['eval', __filename, __filename]],
    ['too many arguments', ['train', 'a', 'b']],
  ];
  it.each(bad)('exits non-zero with a one-line error for %s', async (_what, argv) => {
    const r = await run(...argv);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/^bptt: error: [^\n]+\n$/);
    expect(r.out).toBe('');
  });
});

const cli = path.join(__dirname, '..', 'dist', 'cli.js');
const built = fs.existsSync(cli);
(built ? describe : describe.skip)('bptt CLI (compiled dist/cli.js)', () => {
  it('starts with a shebang and runs as a program', () => {
    expect(fs.readFileSync(cli, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    const ck = path.join(dir, 'spawned.safetensors');
    const t = spawnSync(process.execPath, [cli, 'train', corpus, ...small, '--steps', '2', '--out', ck], { encoding: 'utf8' });
    expect(t.status).toBe(0);
    const s = spawnSync(process.execPath, [cli, 'sample', ck, '--length', '20', '--seed', '1'], { encoding: 'utf8' });
    expect(s.status).toBe(0);
    const bad = spawnSync(process.execPath, [cli, 'train', '--steps', 'x'], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('saves a checkpoint on SIGINT before exiting', async () => {
    const ck = path.join(dir, 'sigint.safetensors');
    const child = spawn(process.execPath, [cli, 'train', corpus, ...small, '--steps', '100000', '--out', ck]);
    let out = '';
    const code = await new Promise<number | null>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (/^training on /m.test(out) && !child.killed) child.kill('SIGINT');
      });
      child.on('exit', (c) => resolve(c));
    });
    expect(code).toBe(130);
    expect(out).toMatch(/stopped after \d+ steps/);
    expect(decodeSafetensors(fs.readFileSync(ck)).tensors.has('fc.weight')).toBe(true);
  });
});
