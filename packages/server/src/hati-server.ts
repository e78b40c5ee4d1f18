import { lstat, unlink } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createConnection, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { StorageManager } from '@hati/storage';
import { CommandExecutor } from './command-executor.js';
import { Connection, type ConnectionOptions } from './connection.js';
import { ServerError } from './errors.js';
import { Logger } from './logger.js';
import { type ListenAddress, type ServerOptions, serverDefaults } from './options.js';
import { RpcServer } from './rpc-server.js';
import { type Listener, ServerStats, type StatsSnapshot } from './stats.js';

/** How long a graceful shutdown waits for clients to take their last replies. */
const SHUTDOWN_GRACE_MS = 10_000;

export interface ServerAddresses {
  tcp?: ListenAddress;
  unix?: string;
  rpc?: ListenAddress;
}

function addressOf(server: NetServer | HttpServer): ListenAddress {
  const address = server.address() as AddressInfo;
  return { host: address.address, port: address.port };
}

async function listen(server: NetServer | HttpServer, what: string, args: [number, string] | [string]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const reason = err.code === 'EADDRINUSE' ? 'address already in use' : err.message;
      reject(new ServerError('LISTEN_FAILED', `cannot listen on ${what}: ${reason}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(...(args as [number, string]), () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** A UNIX socket file left by a server that is gone is removed; one that answers is in use. */
async function clearStaleSocket(path: string): Promise<void> {
  try {
    if (!(await lstat(path)).isSocket()) return;
  } catch {
    return;
  }
  const alive = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (!alive) await unlink(path);
}

/**
 * A Hati node: the storage, and the TCP, UNIX socket and JSON-RPC listeners that serve it.
 * `HatiServer.start(options)` resolves once every listener is accepting; `close()` shuts down
 * gracefully: stop accepting, answer what was read, close the storage.
 */
export class HatiServer {
  readonly storage: StorageManager;
  readonly stats: ServerStats;
  readonly logger: Logger;
  readonly #executor: CommandExecutor;
  readonly #rpc: RpcServer;
  readonly #connectionOptions: ConnectionOptions;
  readonly #connections = new Set<Connection>();
  #tcp: NetServer | undefined;
  #unix: NetServer | undefined;
  #unixPath: string | undefined;
  #http: HttpServer | undefined;
  #closing: Promise<void> | undefined;

  private constructor(storage: StorageManager, options: ServerOptions, logger: Logger) {
    this.storage = storage;
    this.logger = logger;
    this.stats = new ServerStats();
    this.#executor = new CommandExecutor(storage, this.stats);
    this.#rpc = new RpcServer(storage, this.stats, logger, options.maxRpcBody ?? serverDefaults.maxRpcBody);
    this.#connectionOptions = {
      limits: options.limits ?? {},
      maxOutputBuffer: options.maxOutputBuffer ?? serverDefaults.maxOutputBuffer,
      maxPendingReplies: options.maxPendingReplies ?? serverDefaults.maxPendingReplies,
    };
  }

  static async start(options: ServerOptions): Promise<HatiServer> {
    const logger = options.logger ?? new Logger(options.logLevel ?? serverDefaults.logLevel);
    const storage = await StorageManager.open({
      dataDir: options.dataDir ?? serverDefaults.dataDir,
      ...(options.shards !== undefined && { shards: options.shards }),
      ...(options.durability !== undefined && { durability: options.durability }),
      ...(options.clock !== undefined && { clock: options.clock }),
    });
    const server = new HatiServer(storage, options, logger);
    try {
      await server.#listen(options);
    } catch (err) {
      await server.close();
      throw err;
    }
    return server;
  }

  /** Where the listeners accept connections (ports resolved when 0 was asked for). */
  get addresses(): ServerAddresses {
    return {
      ...(this.#tcp && { tcp: addressOf(this.#tcp) }),
      ...(this.#unixPath !== undefined && { unix: this.#unixPath }),
      ...(this.#http && { rpc: addressOf(this.#http) }),
    };
  }

  statsSnapshot(): Promise<StatsSnapshot> {
    return this.stats.snapshot(this.storage);
  }

  async #listen(options: ServerOptions): Promise<void> {
    if (options.tcp !== undefined) {
      const { host, port } = options.tcp;
      this.#tcp = this.#socketServer('tcp');
      await listen(this.#tcp, `tcp ${host}:${port}`, [port, host]);
    }
    if (options.unix !== undefined) {
      await clearStaleSocket(options.unix);
      this.#unix = this.#socketServer('unix');
      await listen(this.#unix, `unix socket ${options.unix}`, [options.unix]);
      this.#unixPath = options.unix;
    }
    if (options.rpc !== undefined) {
      const { host, port } = options.rpc;
      const http = createHttpServer({ keepAliveTimeout: 65_000 }, this.#rpc.handle);
      http.on('connection', (socket: Socket) => {
        this.stats.opened('rpc');
        socket.once('close', () => this.stats.closed('rpc'));
      });
      this.#http = http;
      await listen(http, `json-rpc ${host}:${port}`, [port, host]);
    }
  }

  #socketServer(listener: Listener): NetServer {
    // allowHalfOpen: a client may send its requests and end its side; it still gets every reply.
    return createNetServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      if (this.#closing !== undefined) {
        socket.destroy();
        return;
      }
      const connection = new Connection(socket, this.#executor, this.logger, this.#connectionOptions);
      this.#connections.add(connection);
      this.stats.opened(listener);
      socket.once('close', () => {
        this.#connections.delete(connection);
        this.stats.closed(listener);
      });
    });
  }

  /** Graceful shutdown; resolves when the storage is closed. Calling it again returns the same promise. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#rpc.close();
    const closed = [this.#tcp, this.#unix, this.#http].map(
      (server) => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
    );
    for (const connection of this.#connections) connection.end();
    const grace = setTimeout(() => {
      for (const connection of this.#connections) connection.socket.destroy();
      this.#http?.closeAllConnections();
    }, SHUTDOWN_GRACE_MS);
    grace.unref();
    this.#http?.closeIdleConnections();
    await Promise.all(closed);
    clearTimeout(grace);
    if (this.#unixPath !== undefined) await unlink(this.#unixPath).catch(() => {});
    await this.storage.close();
  }
}
