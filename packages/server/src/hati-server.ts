import { lstat, unlink } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createConnection, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { Broker } from '@hati/broker';
import { HddEngine, StorageManager, defaults as storageDefaults } from '@hati/storage';
import { Auth, reloadUsers } from './auth.js';
import { Connection, type ConnectionOptions, closeGracefully } from './connection.js';
import { type DescriptorBudget, descriptorBudget } from './descriptors.js';
import { Dispatcher } from './dispatcher.js';
import { ListenError, ServerErrorCode } from './errors.js';
import { publishExpiries } from './handlers.js';
import type { Hub } from './hub.js';
import { InputBudget } from './input-budget.js';
import { Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { hostPort, isLoopbackHost, protectedModeDenies, protectedModeMessage } from './net-address.js';
import { type ListenAddress, type ServerOptions, serverDefaults } from './options.js';
import { PubSub } from './pubsub.js';
import { errorBody, RpcServer } from './rpc-server.js';
import { Sessions } from './session.js';
import { type Listener, ServerStats, type StatsSnapshot } from './stats.js';
import { ServerTls } from './tls.js';

/** Refused connections that may linger at once while the client reads its error. */
const MAX_REFUSING = 64;

/** How long a graceful shutdown waits for clients to take their last replies. */
const SHUTDOWN_GRACE_MS = 10_000;

/** A TCP or JSON-RPC listener's address; `tls: true` when it speaks TLS (HTTPS for JSON-RPC). */
export interface ListenerAddress extends ListenAddress {
  tls?: true;
}

export interface ServerAddresses {
  tcp?: ListenerAddress;
  unix?: string;
  rpc?: ListenerAddress;
  /** The metrics listener (`ServerOptions.metrics`): plain HTTP. */
  metrics?: ListenAddress;
}

function addressOf(server: NetServer | HttpServer): ListenAddress {
  const address = server.address() as AddressInfo;
  return { host: address.address, port: address.port };
}

async function listen(
  server: NetServer | HttpServer,
  listener: Listener,
  what: string,
  args: [number, string] | [string],
): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const reason = err.code === 'EADDRINUSE' ? 'address already in use' : err.message;
      reject(new ListenError(listener, `cannot listen on ${what}: ${reason}`, { cause: err }));
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
  readonly broker: Broker;
  readonly stats: ServerStats;
  readonly logger: Logger;
  readonly #hub: Hub;
  readonly #dispatcher: Dispatcher;
  readonly #rpc: RpcServer;
  readonly #connectionOptions: ConnectionOptions;
  readonly #connections = new Set<Connection>();
  readonly #protectedMode: boolean;
  readonly #maxClients: number;
  /** Refused connections still closing (see #refuse). */
  #refusing = 0;
  #tcp: NetServer | undefined;
  #unix: NetServer | undefined;
  #unixPath: string | undefined;
  #http: HttpServer | undefined;
  #metricsHttp: HttpServer | undefined;
  /** Made on the first scrape: until then nobody pays for prom-client's default metrics. */
  #metrics: Metrics | undefined;
  /** The TLS of the tcp and json-rpc listeners, when either speaks it. */
  #tls: ServerTls | undefined;
  #tcpTls = false;
  #rpcTls = false;
  #closing: Promise<void> | undefined;

  private constructor(
    storage: StorageManager,
    broker: Broker,
    options: ServerOptions,
    logger: Logger,
    descriptors: DescriptorBudget,
    auth: Auth,
  ) {
    this.storage = storage;
    this.broker = broker;
    // With credentials, remote clients must authenticate instead of being refused.
    this.#protectedMode = (options.protectedMode ?? serverDefaults.protectedMode) && !auth.required;
    this.#maxClients = options.maxClients ?? descriptors.maxClients;
    this.logger = logger;
    this.stats = new ServerStats();
    this.#hub = {
      storage,
      broker,
      rpcBroker: broker.openSession(),
      stats: this.stats,
      logger,
      pubsub: new PubSub(),
      sessions: new Sessions(),
      auth,
      closing: false,
    };
    publishExpiries(this.#hub);
    // Called once per LevelDB write batch and fsync: the cost is per batch, not per key.
    this.stats.hddIo.syncedWrites = storage.hdd.durability === 'always';
    storage.hdd.ioObserver = this.stats.hddIo.observe;
    this.#dispatcher = new Dispatcher(this.#hub);
    this.#rpc = new RpcServer(this.#dispatcher, this.#hub, {
      maxBody: options.maxRpcBody ?? serverDefaults.maxRpcBody,
      maxBatch: options.maxRpcBatch ?? serverDefaults.maxRpcBatch,
      corsOrigins: options.rpcCorsOrigins ?? serverDefaults.rpcCorsOrigins,
      hosts: options.rpcHosts ?? serverDefaults.rpcHosts,
      protectedMode: this.#protectedMode,
      console: options.console ?? serverDefaults.console,
      metrics: () => this.metrics.text(),
    });
    this.#connectionOptions = {
      limits: options.limits ?? {},
      maxOutputBuffer: options.maxOutputBuffer ?? serverDefaults.maxOutputBuffer,
      maxPendingReplies: options.maxPendingReplies ?? serverDefaults.maxPendingReplies,
      inputBudget: new InputBudget(options.maxInputBuffer ?? serverDefaults.maxInputBuffer),
    };
  }

  static async start(options: ServerOptions): Promise<HatiServer> {
    const logger = options.logger ?? new Logger(options.logLevel ?? serverDefaults.logLevel);
    // Before the store opens: a bad users file is the operator's to fix, and quick to report.
    const auth = await Auth.create(
      {
        ...(options.password !== undefined && { password: options.password }),
        ...(options.usersFile !== undefined && { usersFile: options.usersFile }),
      },
      logger,
    );
    const dataDir = options.dataDir ?? serverDefaults.dataDir;
    // Without --shards the hdd store opens with its own count (storage's HddEngineOptions.shards).
    // A directory that cannot be read is left to the store's open, which says what is wrong
    // with it (DATA_DIR_NOT_WRITABLE for a file in the way) better than this read can.
    const stored =
      options.shards === undefined ? await HddEngine.storedShards(dataDir).catch(() => undefined) : undefined;
    const hddShards = options.shards ?? stored ?? storageDefaults.hddShards;
    // The broker's two LevelDBs (messages, delivery counts) count as two more shards.
    const descriptors = descriptorBudget(hddShards + 2);
    const storage = await StorageManager.open({
      dataDir,
      ...(options.shards !== undefined && { shards: options.shards }),
      ...(options.durability !== undefined && { durability: options.durability }),
      ...(options.clock !== undefined && { clock: options.clock }),
      maxOpenFiles: descriptors.maxOpenFilesPerShard,
      // Loud: an operator must see at once that hdd writes are refused, and why.
      onStateChange: ({ state, reason }) => {
        if (state === 'recovered') logger.warn(`hdd store recovered: ${reason}`);
        else logger.error(`hdd store ${state === 'gone' ? 'unusable' : 'refusing writes'}: ${reason}`);
      },
    });
    let broker: Broker;
    try {
      broker = await Broker.open({
        dataDir,
        ...(options.durability !== undefined && { durability: options.durability }),
        ...(options.clock !== undefined && { clock: options.clock }),
        maxOpenFiles: descriptors.maxOpenFilesPerShard,
      });
    } catch (err) {
      await storage.close();
      throw err;
    }
    const server = new HatiServer(storage, broker, options, logger, descriptors, auth);
    if (options.maxClients === undefined && descriptors.maxClients < 64) {
      logger.warn(
        `only ${descriptors.maxClients} clients fit in the open-file limit of ${descriptors.limit} after ${descriptors.reserved} descriptors kept for the storage; raise it (ulimit -n) or use fewer shards`,
      );
    }
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
      ...(this.#tcp && { tcp: { ...addressOf(this.#tcp), ...(this.#tcpTls && { tls: true as const }) } }),
      ...(this.#unixPath !== undefined && { unix: this.#unixPath }),
      ...(this.#http && { rpc: { ...addressOf(this.#http), ...(this.#rpcTls && { tls: true as const }) } }),
      ...(this.#metricsHttp && { metrics: addressOf(this.#metricsHttp) }),
    };
  }

  statsSnapshot(): Promise<StatsSnapshot> {
    return this.stats.snapshot(this.#hub);
  }

  /**
   * The server's Prometheus metrics (`GET /metrics`): its own Registry, made on first use, with
   * prom-client's default process metrics (docs/monitoring.md).
   */
  get metrics(): Metrics {
    this.#metrics ??= new Metrics({
      commands: this.stats.commands,
      rpc: this.stats.rpc,
      hddIo: this.stats.hddIo,
      snapshot: () => this.statsSnapshot(),
    });
    return this.#metrics;
  }

  async #listen(options: ServerOptions): Promise<void> {
    this.#tls = await ServerTls.fromOptions(options, this.logger, {
      full: () => this.#clients() >= this.#maxClients,
      refuse: (socket, answer) => this.#refuse(socket, answer),
    });
    this.#tcpTls = this.#tls !== undefined && options.tcpTls === true;
    this.#rpcTls = this.#tls !== undefined && options.rpcTls === true;
    for (const [name, address] of [
      ['tcp', options.tcp],
      ['json-rpc', options.rpc],
      ['metrics', options.metrics],
    ] as const) {
      if (address === undefined || isLoopbackHost(address.host) || this.#hub.auth.required) continue;
      if (name === 'metrics') {
        this.logger.warn(
          this.#protectedMode
            ? `protected mode: the metrics listener is bound to ${address.host}, but no credentials are configured, so only clients on this machine may read /metrics (/healthz and /readyz answer everyone; --protected-mode no lets others in)`
            : `protected mode is off and no credentials are configured: anyone who can reach ${address.host}:${address.port} (metrics) can read /metrics: key counts, queue names and rates`,
        );
      } else if (this.#protectedMode) {
        this.logger.warn(
          `protected mode: the ${name} listener is bound to ${address.host}, but no credentials are configured, so only clients on this machine may connect (--protected-mode no lets others in)`,
        );
      } else {
        this.logger.warn(
          `protected mode is off and no credentials are configured: anyone who can reach ${address.host}:${address.port} (${name}) can read, write and flush every key`,
        );
      }
    }
    if (options.tcp !== undefined) {
      const { host, port } = options.tcp;
      // Over TLS, a client is admitted as on the plain listener once its handshake is done.
      this.#tcp = this.#tcpTls ? (this.#tls as ServerTls).tcpServer(this.#acceptor('tcp')) : this.#socketServer('tcp');
      await listen(this.#tcp, 'tcp', `tcp ${host}:${port}`, [port, host]);
    }
    if (options.unix !== undefined) {
      await clearStaleSocket(options.unix);
      this.#unix = this.#socketServer('unix');
      await listen(this.#unix, 'unix', `unix socket ${options.unix}`, [options.unix]);
      this.#unixPath = options.unix;
    }
    if (options.rpc !== undefined) {
      const { host, port } = options.rpc;
      const httpOptions = { keepAliveTimeout: 65_000 };
      const http = this.#rpcTls
        ? (this.#tls as ServerTls).httpsServer(httpOptions, this.#rpc.handle)
        : createHttpServer(httpOptions, this.#rpc.handle);
      // Over HTTPS, requests arrive on the TLSSocket, which exists once the handshake is done.
      http.on(this.#rpcTls ? 'secureConnection' : 'connection', (socket: Socket) => {
        if (this.#clients() >= this.#maxClients) {
          this.#refuseHttp(socket);
          return;
        }
        this.stats.opened('rpc');
        this.#rpc.openSession(socket);
        socket.once('close', () => this.stats.closed('rpc'));
      });
      this.#http = http;
      await listen(http, 'rpc', `json-rpc ${host}:${port}`, [port, host]);
    }
    if (options.metrics !== undefined) {
      const { host, port } = options.metrics;
      const http = createHttpServer({ keepAliveTimeout: 65_000 }, this.#rpc.handleMetrics);
      http.on('connection', (socket: Socket) => {
        if (this.#clients() >= this.#maxClients) {
          this.#refuseHttp(socket);
          return;
        }
        this.stats.opened('metrics');
        socket.once('close', () => this.stats.closed('metrics'));
      });
      this.#metricsHttp = http;
      await listen(http, 'metrics', `metrics ${host}:${port}`, [port, host]);
    }
  }

  #socketServer(listener: Listener): NetServer {
    // allowHalfOpen: a client may send its requests and end its side; it still gets every reply.
    return createNetServer({ allowHalfOpen: true, noDelay: true }, this.#acceptor(listener));
  }

  /** Serves a new client of the TCP (plain, or TLS once its handshake is done) or UNIX listener, or refuses it. */
  #acceptor(listener: Listener): (socket: Socket) => void {
    return (socket) => {
      if (this.#closing !== undefined) {
        socket.destroy();
        return;
      }
      if (this.#clients() >= this.#maxClients) {
        this.#refuse(socket, `-${ServerErrorCode.MAX_CLIENTS} ${this.#maxClientsMessage()}\r\n`);
        return;
      }
      if (listener === 'tcp' && protectedModeDenies(this.#protectedMode, socket.remoteAddress)) {
        // Debug only: anyone who can reach the port could fill the log. Start-up warned already.
        if (this.logger.debugEnabled)
          this.logger.debug(`protected mode: refused a client from ${socket.remoteAddress}`);
        this.#refuse(socket, `-${ServerErrorCode.DENIED} ${protectedModeMessage('TCP')}\r\n`);
        return;
      }
      const address = listener === 'unix' ? (this.#unixPath ?? 'unix') : hostPort(socket);
      const connection = new Connection(socket, this.#dispatcher, this.logger, this.#connectionOptions, (transport) => {
        const session = this.#hub.sessions.open(listener, address, transport, this.#hub.auth.initialUser);
        session.onClose(() => this.#hub.pubsub.drop(session));
        return session;
      });
      this.#connections.add(connection);
      this.stats.opened(listener);
      socket.once('close', () => {
        this.#connections.delete(connection);
        this.stats.closed(listener);
      });
    };
  }

  /**
   * Answers a connection that is not served with one error, then closes it gracefully so the
   * client can read the error. Those lingering closes hold descriptors too: past
   * MAX_REFUSING at once (a flood of connections), refused sockets are dropped at once instead,
   * so that refusing clients cannot take the descriptors the storage needs.
   */
  #refuse(socket: Socket, answer: string): void {
    if (this.#refusing >= MAX_REFUSING) {
      socket.destroy();
      return;
    }
    this.#refusing++;
    socket.once('close', () => this.#refusing--);
    closeGracefully(socket, answer);
  }

  /** Client connections open now, on every listener. */
  #clients(): number {
    const { tcp, unix, rpc, metrics } = this.stats.connections;
    // Connections still in their TLS handshake hold a descriptor too.
    return tcp.current + unix.current + rpc.current + metrics.current + (this.#tls?.handshakes ?? 0);
  }

  /** Refuses an HTTP connection past max clients before HTTP parsing starts: a raw 503 with the error, then close. */
  #refuseHttp(socket: Socket): void {
    const body = errorBody(ServerErrorCode.MAX_CLIENTS, -32000, this.#maxClientsMessage());
    this.#refuse(
      socket,
      `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }

  #maxClientsMessage(): string {
    return `max number of clients reached (${this.#maxClients}); see --max-clients`;
  }

  /**
   * Reads the users file and the TLS certificate files again (SIGHUP), without dropping a
   * connection: sessions keep their users with the new rights; one whose user is gone is closed.
   * An invalid file is logged, changes nothing, and rejects (USERS_FILE_INVALID for users).
   */
  async reload(): Promise<void> {
    // Never rejects: invalid TLS files are logged and the certificate in use stays.
    await this.#tls?.reload();
    if (this.#hub.auth.reloadable) {
      try {
        await reloadUsers(this.#hub);
        this.logger.info(`users reloaded: ${this.#hub.auth.names().length} users`);
      } catch (err) {
        this.logger.error(`users not reloaded, the old ones stay in effect: ${(err as Error).message}`);
        throw err;
      }
    }
  }

  /** Graceful shutdown; resolves when the storage is closed. Calling it again returns the same promise. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#hub.closing = true;
    const closed = [this.#tcp, this.#unix, this.#http, this.#metricsHttp].map(
      (server) => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
    );
    this.#tls?.close();
    for (const connection of this.#connections) connection.end();
    const grace = setTimeout(() => {
      for (const connection of this.#connections) connection.socket.destroy();
      this.#http?.closeAllConnections();
      this.#metricsHttp?.closeAllConnections();
    }, SHUTDOWN_GRACE_MS);
    grace.unref();
    this.#http?.closeIdleConnections();
    this.#metricsHttp?.closeIdleConnections();
    await Promise.all(closed);
    clearTimeout(grace);
    if (this.#unixPath !== undefined) await unlink(this.#unixPath).catch(() => {});
    await this.broker.close();
    await this.storage.close();
  }
}
