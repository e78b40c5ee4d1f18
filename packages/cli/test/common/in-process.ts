// `main()` called in this process with a capturing Io, for tests of help, usage errors, and
// commands run many times (no module loading per run).
import { PassThrough } from 'node:stream';
import { type Io, main } from '../../src/main.js';

export interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `hati <argv>`; `stdin`, when given, is what the command reads (`-` of hati backup). */
export async function inProcess(
  argv: string[],
  env: NodeJS.ProcessEnv = {},
  stdin?: NodeJS.ReadableStream,
): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    env,
    ...(stdin !== undefined && { terminal: { stdin, stdout: new PassThrough() } }),
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}
