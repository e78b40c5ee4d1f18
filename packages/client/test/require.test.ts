// `require('@hati/client')` from CommonJS: the exports maps carry a `default` condition that
// points at the same ES module, which Node 20.19+ can require() (it has no top-level await).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import t from 'tap';
import * as clientEsm from '../src/index.js';

t.test('CommonJS can require @hati/client and @hati/protocol', async (t) => {
  const fixture = new URL('fixtures/require.cjs', import.meta.url).pathname;
  // Plain node, none of tap's loaders: this resolves the packages' exports maps and dist/ files.
  const child = spawn(process.execPath, [fixture], { cwd: new URL('..', import.meta.url).pathname });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk;
  });
  const [code] = (await once(child, 'close')) as [number | null];
  t.equal(code, 0, 'exit code 0');
  t.notMatch(stderr, /Error/, 'no error on stderr');
  const found = JSON.parse(stdout) as {
    client: Record<string, string>;
    protocol: Record<string, string>;
    errorCode: string;
    ping: string;
  };
  for (const name of [
    'createClient',
    'createRpcClient',
    'HatiClient',
    'HatiRpcClient',
    'HatiError',
    'CommandMethods',
  ]) {
    t.equal(found.client[name], 'function', `@hati/client exports the function ${name}`);
  }
  t.same(Object.keys(found.client).sort(), Object.keys(clientEsm).sort(), 'the same names as the ES module');
  t.equal(found.client.ClientErrorCode, 'object');
  for (const name of [
    'encodeCommand',
    'ReplyParser',
    'RequestParser',
    'ReplyWriter',
    'lookupCommand',
    'ProtocolError',
  ]) {
    t.equal(found.protocol[name], 'function', `@hati/protocol exports the function ${name}`);
  }
  t.equal(found.protocol.commands, 'object');
  t.equal(found.errorCode, 'TIMEOUT', 'a HatiError made through require carries its code');
  t.equal(found.ping, '*1\r\n$4\r\nPING\r\n', 'encodeCommand works through require');
});
