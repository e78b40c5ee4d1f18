#!/usr/bin/env node
// The `hati` binary. CommonJS on purpose: it runs before any ES module is loaded, and so
// before Node's thread pool starts, which is the last moment UV_THREADPOOL_SIZE is read.
// `--cpu-num` (or HATI_CPU_NUM) sizes that pool: LevelDB reads, writes and fsyncs run on it.
// Without the flag it is all cores. The value is checked by `main`; here a valid one is passed on.

import os = require('node:os');

function cpuNumArgument(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--cpu-num' || arg === '--cpuNum') return argv[i + 1];
    if (arg.startsWith('--cpu-num=') || arg.startsWith('--cpuNum=')) return arg.slice(arg.indexOf('=') + 1);
  }
  return process.env.HATI_CPU_NUM;
}

const cpuNum = cpuNumArgument(process.argv.slice(2)) ?? String(os.availableParallelism());
if (/^[1-9]\d{0,3}$/.test(cpuNum) && Number(cpuNum) <= 1024) process.env.UV_THREADPOOL_SIZE = cpuNum;

// A signal while the modules load (a few hundred ms) is held, not fatal: `hati start` takes it as
// a signal during start-up and exits 0 without opening the store; other commands are ended by it.
const held: NodeJS.Signals[] = [];
const hold = (signal: NodeJS.Signals) => {
  held.push(signal);
};
process.on('SIGINT', hold);
process.on('SIGTERM', hold);
const heldSignal = (): NodeJS.Signals | undefined => {
  process.off('SIGINT', hold);
  process.off('SIGTERM', hold);
  return held[0];
};

import('./main.js').then(
  async ({ main }) => {
    process.exitCode = await main(process.argv.slice(2), {
      stdout: (text) => process.stdout.write(text),
      stderr: (text) => process.stderr.write(text),
      env: process.env,
      heldSignal,
    });
  },
  (err: unknown) => {
    process.stderr.write(`hati: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
