// `main()` called in this process with a capturing Io, for tests of help, usage errors and
// commands that need no server.
import { type Io, main } from '../../src/main.js';

export interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

export async function inProcess(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Captured> {
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
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}
