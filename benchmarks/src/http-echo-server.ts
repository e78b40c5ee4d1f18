// The JSON-RPC peer of the server benchmark, run as a child process by http-echo.ts: a bare
// node:http server that reads each POST body, JSON.parse's it and answers the call with a fixed
// result. No checks, no storage, no library: what any JSON-RPC server written for Node pays at
// least per request, so that Hati's JSON-RPC rows can be read as a fraction of that floor.
//
//   node dist/http-echo-server.js <value>
//
// Listens on 127.0.0.1 on a port the system picks, and prints
// `http-echo listening on http://127.0.0.1:<port>/` once it accepts connections. A
// `Storage.Set` call is answered `true` and any other call `<value>`, so that the replies are
// byte for byte those of Hati to the same requests (rpc-load.ts's expectedResponse).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

const value = process.argv[2];
if (value === undefined) {
  process.stderr.write('usage: http-echo-server <value>\n');
  process.exit(2);
}

interface Call {
  id?: unknown;
  method?: unknown;
}

/** The response to one call, built as a JSON-RPC server builds it: an object, then JSON.stringify. */
function answer(call: Call): string {
  const result = call.method === 'Storage.Set' ? true : value;
  return JSON.stringify({ jsonrpc: '2.0', id: call.id ?? null, result });
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let body: string;
    try {
      body = answer(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Call);
    } catch {
      body = '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"invalid JSON"}}';
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

// The keep-alive timeout of Hati's JSON-RPC listener, so that both keep the same connections.
const server = createServer({ keepAliveTimeout: 65_000 }, handle);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.stdout.write(`http-echo listening on http://127.0.0.1:${port}/\n`);
});
// SIGTERM from stopProcess: close the listener and the kept-alive connections, then exit 0.
process.once('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
