#!/usr/bin/env node
// The `hati` binary. CommonJS on purpose: it runs before any ES module is loaded, and so
// before Node's thread pool starts, which is the last moment UV_THREADPOOL_SIZE is read.
// `--cpu-num` (or HATI_CPU_NUM) sizes that pool: LevelDB reads, writes and fsyncs run on it.
// Without the flag it is all cores. The value is checked by `main`; here a valid one is passed on.

import fs = require('node:fs');
import os = require('node:os');

/** The value of `--<name> <value>` or `--<name>=<value>` (kebab or camel case), if given. */
function flagValue(argv: string[], kebab: string, camel: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === `--${kebab}` || arg === `--${camel}`) return argv[i + 1];
    if (arg.startsWith(`--${kebab}=`) || arg.startsWith(`--${camel}=`)) return arg.slice(arg.indexOf('=') + 1);
  }
  return undefined;
}

/**
 * `cpu-num` of a --config file (YAML `cpu-num: 4`, TOML `cpu-num = 4`), read with a pattern:
 * the parsers are ES modules, which would start the pool. `main` reads the file properly and
 * reports its mistakes.
 */
function cpuNumOfConfig(argv: string[]): string | undefined {
  const path = flagValue(argv, 'config', 'config') ?? process.env.HATI_CONFIG;
  if (path === undefined) return undefined;
  try {
    return /^\s*["']?cpu-num["']?\s*[:=]\s*["']?(\d+)/m.exec(fs.readFileSync(path, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

// The command line, then the environment, then the config file: the precedence of every flag.
const argv = process.argv.slice(2);
const cpuNum =
  flagValue(argv, 'cpu-num', 'cpuNum') ??
  process.env.HATI_CPU_NUM ??
  cpuNumOfConfig(argv) ??
  String(os.availableParallelism());
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
