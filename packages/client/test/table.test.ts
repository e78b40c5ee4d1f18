// The clients follow the command table: a command with a `client` method has it on both
// clients (on the JSON-RPC one when it has a JSON-RPC method), the JSON-RPC mapping is the
// table's, and every command with a JSON-RPC method answers the same over JSON-RPC as over TCP.
import { allCommands, type CommandName, type CommandSpec, commands } from '@hati/protocol';
import t from 'tap';
import { createClient, createRpcClient, HatiClient, HatiError, HatiRpcClient } from '../src/index.js';
import { rpcMethods } from '../src/rpc-client.js';
import { startServer } from './common/harness.js';

const methodsOf = (prototype: object): Set<string> => {
  const names = new Set<string>();
  for (let p: object | null = prototype; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const name of Object.getOwnPropertyNames(p)) {
      if (typeof Object.getOwnPropertyDescriptor(p, name)?.value === 'function') names.add(name);
    }
  }
  return names;
};

t.test('every command with a client method has it on both clients', async (t) => {
  const tcp = methodsOf(HatiClient.prototype);
  const rpc = methodsOf(HatiRpcClient.prototype);
  let checked = 0;
  for (const spec of allCommands()) {
    if (spec.client === null) continue;
    checked++;
    t.ok(tcp.has(spec.client), `HatiClient#${spec.client} runs ${spec.name}`);
    if (spec.rpc !== null) t.ok(rpc.has(spec.client), `HatiRpcClient#${spec.client} runs ${spec.name}`);
    else t.notOk(rpc.has(spec.client), `HatiRpcClient has no ${spec.client}: ${spec.name} has no JSON-RPC method`);
  }
  t.ok(checked >= 20, `${checked} commands have a client method`);
});

t.test('the JSON-RPC mapping is derived from the table', async (t) => {
  const withMethod = (Object.entries(commands) as Array<[CommandName, CommandSpec]>).filter(([, s]) => s.rpc !== null);
  t.same(
    [...rpcMethods.keys()].sort(),
    withMethod.map(([name]) => name).sort(),
    'one mapping per command with a JSON-RPC method',
  );
  for (const [name, spec] of withMethod) t.equal(rpcMethods.get(name)?.method, spec.rpc, `${name}: ${spec.rpc}`);
  t.notOk(
    allCommands().some((spec) => spec.name.includes(' ') && spec.rpc !== null),
    'no subcommand has a JSON-RPC method (the client maps top-level commands only)',
  );
});

// Compile-time: every typed-client method the table names exists on both clients (JSON-RPC's
// only where the command has a method). A command added with a `client` name and no method
// fails the typecheck.
type ClientMethodOf<N extends CommandName> = (typeof commands)[N]['client'];
type Named = { [N in CommandName]: ClientMethodOf<N> }[CommandName];
type TcpMissing = Exclude<Exclude<Named, null>, keyof HatiClient>;
type RpcNamed = {
  [N in CommandName]: (typeof commands)[N]['rpc'] extends null ? never : ClientMethodOf<N>;
}[CommandName];
type RpcMissing = Exclude<Exclude<RpcNamed, null>, keyof HatiRpcClient>;
const noneMissing: [TcpMissing, RpcMissing] extends [never, never] ? true : false = true;

t.test('the typed clients have a method for every client name of the table (checked by tsc, too)', async (t) => {
  t.equal(noneMissing, true);
});

t.test('a command without a JSON-RPC method rejects with NOT_SUPPORTED over JSON-RPC', async (t) => {
  const rpc = createRpcClient({ url: 'http://127.0.0.1:1/' });
  for (const spec of allCommands()) {
    if (spec.rpc !== null || spec.name.includes(' ')) continue;
    const error = await rpc.call(spec.name as CommandName, [] as never).catch((err: unknown) => err);
    t.match(error, { name: 'HatiError', code: 'NOT_SUPPORTED', transient: false }, `${spec.name}: NOT_SUPPORTED`);
  }
  const batch = await rpc.batch((b) => [b.call('QUIT', [])]).catch((err: unknown) => err);
  t.match(batch, { code: 'NOT_SUPPORTED' }, 'in a batch too, without a request');
  const option = await rpc.call('SCAN', ['memory', '0', 'TYPE', 'hdd'] as never).catch((err: unknown) => err);
  t.match(option, { code: 'NOT_SUPPORTED', message: /TYPE/ }, "an option that has no JSON-RPC param (SCAN's TYPE)");
  const unknown = await rpc.call('SET', ['memory', 0, 'k', 'v', 'PX'] as never).catch((err: unknown) => err);
  t.ok(unknown instanceof HatiError && unknown.code === 'SYNTAX', 'an unknown option: SYNTAX, as over TCP');
});

/** What a call gave, comparable across transports: its value, or its error code. */
async function outcome(promise: Promise<unknown>): Promise<unknown> {
  try {
    return await promise;
  } catch (err) {
    return err instanceof HatiError ? `error ${err.code}` : err;
  }
}

t.test('each command with a JSON-RPC method answers the same over JSON-RPC as over TCP', async (t) => {
  // Two servers from empty, each running every example of the table in order.
  const [a, b] = await Promise.all([startServer(t), startServer(t)]);
  const tcp = createClient({ port: a.server.addresses.tcp?.port as number });
  t.teardown(() => tcp.close());
  const rpc = createRpcClient({ url: `http://127.0.0.1:${b.server.addresses.rpc?.port}/` });
  let compared = 0;
  for (const [name, spec] of Object.entries(commands) as Array<[CommandName, CommandSpec]>) {
    if (spec.rpc === null) continue;
    const args = spec.example as never;
    const [overTcp, overRpc] = [await outcome(tcp.call(name, args)), await outcome(rpc.call(name, args))];
    if (spec.reply === 'json' || spec.reply === 'text') {
      // STATS and INFO describe the server at that moment: the same shape, not the same numbers.
      t.equal(typeof overRpc, typeof overTcp, `${name}: a ${typeof overTcp} on both`);
      t.notMatch(String(overRpc), /^error/, `${name} over JSON-RPC`);
    } else {
      t.same(overRpc, overTcp, `${name} ${spec.example.join(' ')}: ${JSON.stringify(overTcp)}`);
    }
    compared++;
  }
  t.ok(compared >= 15, `${compared} commands compared`);
});
