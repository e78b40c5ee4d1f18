// The JSON-RPC floor of the server benchmark: a bare node:http server (http-echo-server.ts) as a
// child process, and Hati's JSON-RPC against it under the same autocannon load, run after run,
// alternating, so that the ratio of the two comes from one run on the same shared cores.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Started, startProcess, stopProcess } from './procs.js';
import { median } from './report.js';
import { type RpcLoad, type RpcLoadResult, rpcLoad } from './rpc-load.js';

const echoScript = join(fileURLToPath(new URL('.', import.meta.url)), 'http-echo-server.js');

export type HttpEcho = Started & { port: number };

/**
 * Starts the bare node:http JSON-RPC echo on 127.0.0.1, on a port it picks itself (so no other
 * process can take it in between) and reports. It answers `Storage.Set` with `true` and every
 * other call with `value`: the bodies Hati sends for the same requests, so rpcLoad checks both
 * the same way.
 */
export async function startHttpEcho(value: string): Promise<HttpEcho> {
  const started = await startProcess(
    'http-echo',
    process.execPath,
    [echoScript, value],
    /http-echo listening on http:\/\/127\.0\.0\.1:(\d+)\//,
  );
  return { ...started, port: Number(started.match[1]) };
}

/** Stops the echo with SIGTERM; resolves with how it ended (`exited (code 0, ...)` when cleanly). */
export function stopHttpEcho(echo: HttpEcho): Promise<string> {
  return stopProcess(echo);
}

/** The load of both sides: everything of RpcLoad but the port. */
export type EchoLoad = Omit<RpcLoad, 'port'> & {
  hatiPort: number;
  echoPort: number;
  /** Measured runs of each side. */
  rounds: number;
  /** Unmeasured seconds of load on each side before the first round (JIT warm-up). */
  warmupSeconds: number;
  /** Called after each run, to check that the servers are still up (procs.ts assertAlive). */
  afterRun?: (side: 'hati' | 'echo') => void;
};

export interface EchoComparison {
  hati: RpcLoadResult[];
  echo: RpcLoadResult[];
  /** Hati's requests/s over the echo's, per round. */
  ratios: number[];
  medianRatio: number;
  minRatio: number;
  /** Non-2xx, errors, timeouts and wrong bodies of all measured runs, on each side. */
  hatiFailures: number;
  echoFailures: number;
}

function failures(results: readonly RpcLoadResult[]): number {
  return results.reduce((sum, r) => sum + r.non2xx + r.errors + r.timeouts + r.mismatches, 0);
}

/**
 * Hati's JSON-RPC against the bare echo: a warm-up of each, then `rounds` rounds of one run of
 * each with the same autocannon settings (rpcLoad). The order flips every round (Hati first,
 * then the echo first), so that a load that drifts on the shared machine weighs on both sides.
 */
export async function rpcVersusEcho(load: EchoLoad): Promise<EchoComparison> {
  const { hatiPort, echoPort, rounds, warmupSeconds, afterRun, ...common } = load;
  const run = async (side: 'hati' | 'echo', durationSeconds: number): Promise<RpcLoadResult> => {
    const result = await rpcLoad({ ...common, durationSeconds, port: side === 'hati' ? hatiPort : echoPort });
    afterRun?.(side);
    return result;
  };
  await run('hati', warmupSeconds);
  await run('echo', warmupSeconds);
  const hati: RpcLoadResult[] = [];
  const echo: RpcLoadResult[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? (['hati', 'echo'] as const) : (['echo', 'hati'] as const);
    for (const side of order) {
      const result = await run(side, common.durationSeconds);
      (side === 'hati' ? hati : echo).push(result);
    }
  }
  const ratios = hati.map((h, i) => h.requestsPerSec / (echo[i] as RpcLoadResult).requestsPerSec);
  return {
    hati,
    echo,
    ratios,
    medianRatio: median(ratios),
    minRatio: Math.min(...ratios),
    hatiFailures: failures(hati),
    echoFailures: failures(echo),
  };
}
