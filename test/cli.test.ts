import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../lib/cli';
import { Capture, runCli } from './helpers/cli';
import { decodeSafetensors, toFloat32 } from '../lib/train/safetensors';

const run = runCli;

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
  it.each([
    ['lstm', '2', false],
    ['gru', '1', true],
  ] as const)('trains a %s model with %s layers (bidirectional %s), writes the PyTorch layout, resumes', async (cell, layers, bidirectional) => {
    const ck = path.join(dir, `${cell}.safetensors`);
    const flags = ['--cell', cell, '--layers', layers, ...(bidirectional ? ['--bidirectional'] : []), '--dropout', layers === '2' ? '0.1' : '0'];
    const t = await run('train', corpus, ...small, ...flags, '--steps', '6', '--seed', '4', '--out', ck);
    expect(t.code).toBe(0);
    expect(t.out).toContain(`${cell}${layers === '2' ? ', 2 layers' : ''}${bidirectional ? ', bidirectional' : ''}`);
    if (bidirectional) expect(t.err).toMatch(/not a language model/);
    const { tensors, metadata } = decodeSafetensors(fs.readFileSync(ck));
    const G = cell === 'lstm' ? 4 : 3;
    const dirs = bidirectional ? 2 : 1;
    for (let l = 0; l < Number(layers); l++) {
      for (const suffix of bidirectional ? ['', '_reverse'] : ['']) {
        expect(tensors.get(`rnn.weight_ih_l${l}${suffix}`)!.shape).toEqual([G * 16, l === 0 ? tensors.get('rnn.weight_ih_l0')!.shape[1] : dirs * 16]);
        expect(tensors.get(`rnn.weight_hh_l${l}${suffix}`)!.shape).toEqual([G * 16, 16]);
        expect(tensors.get(`rnn.bias_ih_l${l}${suffix}`)!.shape).toEqual([G * 16]);
        expect(tensors.get(`rnn.bias_hh_l${l}${suffix}`)!.shape).toEqual([G * 16]);
      }
    }
    expect(tensors.get('fc.weight')!.shape[1]).toBe(dirs * 16);
    expect(JSON.parse(metadata.model)).toMatchObject({ cell, numLayers: Number(layers), bidirectional });
    const again = await run('train', corpus, '--resume', ck, '--steps', '2', '--out', ck);
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/resuming at step 6/);
    const changed = await run('train', corpus, '--resume', ck, '--cell', 'tanh', '--steps', '1', '--out', ck);
    expect(changed.code).toBe(1);
    expect(changed.err).toMatch(/--cell cannot be changed on --resume/);
  });

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

  it('--save-every writes the checkpoint during the run; resuming from it continues bit-identically', async () => {
    const ck = path.join(dir, 'periodic.safetensors');
    const snapshot = path.join(dir, 'periodic-at-6.safetensors');
    const resumed = path.join(dir, 'periodic-resumed.safetensors');
    const settings = [...small, '--k1', '4', '--k2', '6', '--clip', '0.5', '--optim', 'adam', '--lr', '0.01', '--seed', '8'];
    const stdout = new Capture();
    const stderr = new Capture();
    const write = stdout.write.bind(stdout);
    const saves: number[] = [];
    stdout.write = ((chunk: string) => {
      const m = /^checkpoint saved to .* at step (\d+)$/m.exec(String(chunk));
      if (m) {
        saves.push(Number(m[1]));
        // What a kill right after this save would leave on disk.
        if (m[1] === '6') fs.copyFileSync(ck, snapshot);
      }
      return write(chunk);
    }) as typeof stdout.write;
    expect(await main(['train', corpus, ...settings, '--steps', '12', '--save-every', '3', '--out', ck], { stdout, stderr })).toBe(0);
    expect(saves).toEqual([3, 6, 9, 12]);
    const r = await run('train', corpus, '--resume', snapshot, '--steps', '6', '--out', resumed);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/resuming at step 6/);
    expect(weights(resumed)).toEqual(weights(ck));
    // Saving along the way changes nothing in the run itself.
    const plain = path.join(dir, 'periodic-plain.safetensors');
    expect((await run('train', corpus, ...settings, '--steps', '12', '--out', plain)).code).toBe(0);
    expect(weights(plain)).toEqual(weights(ck));
  });

  it('checks the output location before training', async () => {
    const missing = path.join(dir, 'no-such-dir', 'm.safetensors');
    const r = await run('train', corpus, ...small, '--steps', '3', '--out', missing);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toBe(`bptt: error: cannot write the checkpoint ${missing}: the directory ${path.dirname(missing)} does not exist\n`);
    const asDir = await run('train', corpus, ...small, '--steps', '3', '--out', dir);
    expect(asDir.code).toBe(1);
    expect(asDir.out).toBe('');
    expect(asDir.err).toMatch(/^bptt: error: cannot write the checkpoint .*: it is a directory\n$/);
    const underFile = await run('train', corpus, ...small, '--steps', '3', '--out', path.join(corpus, 'm.safetensors'));
    expect(underFile.err).toMatch(/is not a directory\n$/);
  });

  it('ends a run whose saves start failing with one line naming the checkpoint', async () => {
    const sub = path.join(dir, 'vanishing');
    fs.mkdirSync(sub);
    const ck = path.join(sub, 'm.safetensors');
    const stdout = new Capture();
    const stderr = new Capture();
    const write = stdout.write.bind(stdout);
    stdout.write = ((chunk: string) => {
      if (/^checkpoint saved to .* at step 2$/m.test(String(chunk))) fs.rmSync(sub, { recursive: true });
      return write(chunk);
    }) as typeof stdout.write;
    const code = await main(['train', corpus, ...small, '--steps', '10', '--save-every', '2', '--out', ck], { stdout, stderr });
    expect(code).toBe(1);
    expect(stderr.text).toMatch(new RegExp(`^bptt: error: cannot write ${ck.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ENOENT[^\n]*\n$`));
    expect(stderr.text).not.toContain('.bptt-tmp');
  });

  it('refuses a model that cannot fit in memory before allocating it (--hidden 33000)', async () => {
    const r = await run('train', corpus, '--hidden', '33000', '--steps', '1', '--out', path.join(dir, 'huge.safetensors'));
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^bptt: error: --hidden 33000 with a vocabulary of \d+ needs at least [\d.]+ GB .*; this machine has [\d.]+ GB\n$/);
  });

  it('refuses text that is not valid UTF-8, and reads it with --encoding latin1', async () => {
    const latin = path.join(dir, 'latin1.txt');
    fs.writeFileSync(latin, Buffer.concat([Buffer.from(text.slice(0, 300)), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]), Buffer.from(text.slice(300))]));
    const r = await run('train', latin, ...small, '--steps', '2', '--out', path.join(dir, 'latin1.safetensors'));
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toBe(`bptt: error: ${latin} is not valid UTF-8 (byte 303 is 0xe9); pass --encoding latin1 to read it as Latin-1, or --encoding utf16le\n`);
    const ok = await run('train', latin, ...small, '--steps', '2', '--encoding', 'latin1', '--out', path.join(dir, 'latin1.safetensors'));
    expect(ok.code).toBe(0);
    expect(JSON.parse(decodeSafetensors(fs.readFileSync(path.join(dir, 'latin1.safetensors'))).metadata.vocab)).toContain('é');
    // The resumed run reads the file the way the run it continues did.
    const resumed = await run('train', latin, '--resume', path.join(dir, 'latin1.safetensors'), '--steps', '1', '--out', path.join(dir, 'latin1b.safetensors'));
    expect(resumed.err).toBe('');
    expect(resumed.code).toBe(0);
    const evalBad = await run('eval', path.join(dir, 'latin1.safetensors'), latin);
    expect(evalBad.code).toBe(1);
    expect(evalBad.err).toMatch(/not valid UTF-8/);
    expect((await run('eval', path.join(dir, 'latin1.safetensors'), latin, '--encoding', 'latin1')).code).toBe(0);
  });

  it('counts a genuine U+FFFD in the text as valid when locating an invalid byte', async () => {
    const file = path.join(dir, 'fffd.txt');
    fs.writeFileSync(file, Buffer.concat([Buffer.from('ab\uFFFDcd\n'.repeat(50)), Buffer.from([0xff])]));
    const r = await run('train', file, '--steps', '1', '--out', path.join(dir, 'fffd.safetensors'));
    expect(r.err).toMatch(/byte 400 is 0xff/);
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

  it('after kill -9, the periodic checkpoint resumes bit-identically and stale temporary files go', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'killed-'));
    const ck = path.join(sub, 'm.safetensors');
    const settings = [...small, '--optim', 'adam', '--lr', '0.01', '--seed', '4'];
    const child = spawn(process.execPath, [cli, 'train', corpus, ...settings, '--steps', '100000', '--save-every', '5', '--out', ck]);
    let out = '';
    let saved = 0;
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /checkpoint saved to .* at step (\d+)\n/.exec(out);
        if (m && !child.killed) {
          saved = Number(m[1]);
          child.kill('SIGKILL');
        }
      });
      child.on('exit', () => resolve());
    });
    expect(saved).toBeGreaterThan(0);
    // The child may have been killed in the middle of its next save: a temporary file of a dead
    // process, like this one, is what that leaves.
    const stale = path.join(sub, `.bptt-tmp-${child.pid}-0123456789ab-m.safetensors`);
    fs.writeFileSync(stale, 'partial');
    const ckStep = JSON.parse(decodeSafetensors(fs.readFileSync(ck)).metadata.training).step as number;
    expect(ckStep % 5).toBe(0);
    const r = await run('train', corpus, '--resume', ck, '--steps', '3', '--out', ck);
    expect(r.code).toBe(0);
    expect(fs.readdirSync(sub).filter((n) => n.startsWith('.bptt-tmp'))).toEqual([]);
    const whole = path.join(sub, 'whole.safetensors');
    expect((await run('train', corpus, ...settings, '--steps', String(ckStep + 3), '--out', whole)).code).toBe(0);
    expect(weights(ck)).toEqual(weights(whole));
  });

  it('a step that fails mid-run saves the last good state (reference backend, lr growing until the update overflows)', () => {
    const ck = path.join(dir, 'overflow.safetensors');
    const r = spawnSync(
      process.execPath,
      [cli, 'train', corpus, ...small, '--optim', 'sgd', '--clip', '0', '--lr', '3e38', '--schedule', 'cosine', '--warmup', '400', '--steps', '400', '--out', ck],
      { encoding: 'utf8', env: { ...process.env, BPTT_ADDON_PATH: path.join(dir, 'no-addon.node') } },
    );
    expect(r.status).toBe(1);
    const m = /^bptt: error: .*would make \S+ -?Infinity; parameters and optimizer state were left unchanged \(the last good state, step (\d+), was saved to .*\)\n$/.exec(r.stderr.split('\n').slice(-2).join('\n'));
    expect(m).not.toBeNull();
    const ckp = decodeSafetensors(fs.readFileSync(ck));
    expect(JSON.parse(ckp.metadata.training).step).toBe(Number(m![1]));
    for (const t of ckp.tensors.values()) if (t.dtype === 'F32') expect(Array.from(toFloat32(t, 't')).every(Number.isFinite)).toBe(true);
  });
});
