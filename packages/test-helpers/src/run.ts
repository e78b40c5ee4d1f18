import { spawn } from 'node:child_process';

/** What a finished process left: its exit code (null when killed) and everything it printed. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to stdin, which is then closed. @default '' */
  input?: string | Buffer;
  /** Killed (SIGKILL) after this many ms; its code is then null. @default 20_000 */
  timeoutMs?: number;
  /** The child's whole environment. @default process.env */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Spawns `command args`, feeds it `input`, and resolves with its exit code and output once it
 * has exited and closed its streams. Rejects when it cannot be spawned (ENOENT).
 */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<Run> {
  const { input = '', timeoutMs = 20_000, env, cwd } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env, cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    // A child that exits without reading its input makes the write fail with EPIPE: not our error.
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}
