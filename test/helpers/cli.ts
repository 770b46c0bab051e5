/** Runs the `bptt` command in-process (lib/cli.ts main) with captured output, for the CLI tests. */
import { Writable } from 'stream';
import { main } from '../../lib/cli';

/** A stream that keeps what is written to it, as text. */
export class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** `bptt ...argv`: its exit code and what it wrote to stdout and stderr. */
export async function runCli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(argv, { stdout, stderr });
  return { code, out: stdout.text, err: stderr.text };
}
