import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ServerOptions as HttpServerOptions, IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import {
  createSecureContext,
  createServer as createTlsServer,
  type SecureContextOptions,
  type TLSSocket,
  type TlsOptions,
  type Server as TlsServer,
} from 'node:tls';
import { ProtocolErrorCode } from '@hati/protocol';
import { ServerError, ServerErrorCode } from './errors.js';
import type { Logger } from './logger.js';
import { hostPort } from './net-address.js';
import type { ServerOptions, TlsFiles } from './options.js';
import { errorBody } from './rpc-server.js';

/** How long a TLS client may stay silent after connecting, and then how long its handshake may take. */
export const TLS_HANDSHAKE_MS = 10_000;

/** The oldest protocol version served: TLS 1.0 and 1.1 are broken and deprecated (RFC 8996). */
const MIN_VERSION = 'TLSv1.2';

/** The first byte of a TLS handshake record: what every TLS client sends first (its ClientHello). */
const HANDSHAKE_RECORD = 0x16;

/**
 * Handshakes that may go on at once while the server is full, only for their client to read
 * MAX_CLIENTS (as many as the refused connections HatiServer lets linger).
 */
const MAX_OVERFLOW_HANDSHAKES = 64;

/** JSON-RPC's code for a request that is refused before it is read (as rpc-server's refusals). */
const JSONRPC_INVALID_REQUEST = -32600;

export type AuthClients = NonNullable<TlsFiles['authClients']>;

/** The client-certificate policy `tls` asks for: as given, else `yes` with a CA and `no` without. */
export function authClientsOf(tls: TlsFiles): AuthClients {
  return tls.authClients ?? (tls.ca === undefined ? 'no' : 'yes');
}

/** What the TLS listeners need of the server they belong to. */
export interface TlsAdmission {
  /** True when no descriptor is left for one more connection (HatiServer's maxClients). */
  full(): boolean;
  /** Answers a connection that is not served with one error, then closes it gracefully. */
  refuse(socket: Socket, answer: string): void;
}

/** A connection in its handshake, as accepted (its TLSSocket is Node's until the handshake is done). */
interface Handshake {
  socket: Socket;
  /** Its first bytes were TLS, and went to the tls.Server (the TCP listener looks first). */
  started: boolean;
  /** Its failure is logged already. */
  logged: boolean;
}

/** The PEM contents of the files, checked: what a secure context is made of. */
interface Credentials {
  cert: string;
  key: string;
  ca: string | undefined;
  /** The server certificate, for the log. */
  certificate: X509Certificate;
}

async function readPem(what: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a directory'
            : (err as Error).message;
    throw new ServerError(ServerErrorCode.LISTEN_FAILED, `cannot read the TLS ${what} file ${path}: ${reason}`, {
      cause: err,
    });
  }
}

function invalid(what: string, path: string, problem: string, cause?: unknown): ServerError {
  return new ServerError(ServerErrorCode.LISTEN_FAILED, `the TLS ${what} file ${path} is invalid: ${problem}`, {
    cause,
  });
}

/** The reason Node or OpenSSL gives, without OpenSSL's source locations. */
function reasonOf(err: unknown): string {
  const { reason, message } = err as { reason?: unknown; message?: unknown };
  if (typeof reason === 'string' && reason !== '') return reason;
  return String(message ?? err);
}

/**
 * Reads the certificate, key and CA files and checks that they are PEM of the right kind and that
 * the key belongs to the certificate. Throws a ServerError (LISTEN_FAILED) naming the file at fault.
 */
export async function readCredentials(files: TlsFiles): Promise<Credentials> {
  const [cert, key, ca] = await Promise.all([
    readPem('certificate', files.cert),
    readPem('key', files.key),
    files.ca === undefined ? undefined : readPem('CA', files.ca),
  ]);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (err) {
    throw invalid('certificate', files.cert, `not a PEM certificate (${reasonOf(err)})`, err);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw invalid('key', files.key, `not an unencrypted PEM private key (${reasonOf(err)})`, err);
  }
  if (!certificate.checkPrivateKey(privateKey))
    throw invalid('key', files.key, `it is not the private key of the certificate in ${files.cert}`);
  if (ca !== undefined) {
    try {
      new X509Certificate(ca);
    } catch (err) {
      throw invalid('CA', files.ca as string, `not a PEM certificate (${reasonOf(err)})`, err);
    }
  }
  try {
    // Whatever else OpenSSL refuses (a chain it cannot load, a key too weak for its security level).
    createSecureContext({ cert, key, ...(ca !== undefined && { ca }), minVersion: MIN_VERSION });
  } catch (err) {
    throw invalid('certificate', files.cert, reasonOf(err), err);
  }
  return { cert, key, ca, certificate };
}

/** The part of a certificate an operator recognises it by, for the log. */
function describe(certificate: X509Certificate): string {
  const names = certificate.subjectAltName ?? certificate.subject.replaceAll('\n', ', ');
  return `${names}, valid until ${new Date(certificate.validTo).toISOString()}`;
}

/** OpenSSL's verdict on a client certificate (`authorizationError`), in words. */
function certificateProblem(code: string, caFile: string): string {
  switch (code) {
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return `${code} (not signed by a CA in ${caFile})`;
    case 'CERT_HAS_EXPIRED':
      return `${code} (the certificate has expired)`;
    case 'CERT_NOT_YET_VALID':
      return `${code} (the certificate is not valid yet)`;
    case 'INVALID_PURPOSE':
      return `${code} (the certificate is not for client authentication)`;
    default:
      return code;
  }
}

/** Why a handshake failed, in words an operator can act on. */
function handshakeProblem(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const reason = reasonOf(err);
  switch (code) {
    case 'ERR_SSL_UNSUPPORTED_PROTOCOL':
    case 'ERR_SSL_NO_PROTOCOLS_AVAILABLE':
      return `${reason} (the client offers no TLS version from 1.2 on)`;
    case 'ERR_SSL_HTTP_REQUEST':
      return `${reason} (plain HTTP sent to the HTTPS port: use https://)`;
    case 'ERR_TLS_HANDSHAKE_TIMEOUT':
      return `no handshake within ${TLS_HANDSHAKE_MS / 1000} s`;
    default:
      return reason;
  }
}

/**
 * The TLS side of the TCP and JSON-RPC listeners: their certificate, read from `options.tls`,
 * the client-certificate policy, and `reload()` that swaps in re-read files for new connections.
 *
 * - TLS 1.2 and later, Node's default ciphers.
 * - `authClients`: `yes` asks for a client certificate and refuses a client without a valid
 *   one; `optional` asks, and refuses only an invalid one; `no` does not ask. It applies to every
 *   TLS listener (TCP and JSON-RPC alike). A refused client is told why once the handshake is
 *   done (`-NOAUTH TLS: ...`, or HTTP 401 with `NOAUTH`), and the refusal is logged.
 * - The TCP listener reads a connection's first byte before any TLS: a client that speaks plain
 *   text gets one `PROTOCOL` error in plain text and is closed, instead of waiting for a handshake
 *   that never comes.
 * - A connection counts as a client from its accept (see `handshakes`), so that connections that
 *   never finish a handshake cannot take more descriptors than maxClients allows; each has
 *   TLS_HANDSHAKE_MS to finish. Past maxClients, a few more handshakes go on (so that the client
 *   can read the server's MAX_CLIENTS error), and beyond those, connections are dropped at once.
 */
export class ServerTls {
  readonly files: TlsFiles;
  readonly authClients: AuthClients;
  readonly #logger: Logger;
  readonly #admission: TlsAdmission;
  #credentials: Credentials;
  readonly #servers: TlsServer[] = [];
  /** Accepted connections whose handshake has not finished, by peer `host:port`. */
  readonly #handshaking = new Map<string, Handshake>();
  /** Connections accepted while the server was full, in their handshake or being refused. */
  #overflow = 0;
  /** Sockets whose failure is logged already: one line per connection. */
  readonly #failed = new WeakSet<TLSSocket>();
  #closed = false;

  private constructor(
    files: TlsFiles,
    authClients: AuthClients,
    credentials: Credentials,
    logger: Logger,
    admission: TlsAdmission,
  ) {
    this.files = files;
    this.authClients = authClients;
    this.#credentials = credentials;
    this.#logger = logger;
    this.#admission = admission;
  }

  /**
   * The TLS of a server's options, or undefined when no listener speaks TLS. Throws a ServerError
   * (LISTEN_FAILED) with a message naming the option or file at fault.
   */
  static async fromOptions(
    options: ServerOptions,
    logger: Logger,
    admission: TlsAdmission,
  ): Promise<ServerTls | undefined> {
    const { tls, tcpTls = false, rpcTls = false } = options;
    const listeners = [tcpTls && 'tcp', rpcTls && 'json-rpc'].filter((name) => name !== false);
    if (tls === undefined) {
      if (listeners.length === 0) return undefined;
      throw new ServerError(
        ServerErrorCode.LISTEN_FAILED,
        `the ${listeners.join(' and ')} listener${listeners.length > 1 ? 's' : ''} should speak TLS, but no certificate and key are given (tls.cert, tls.key; --tls-cert, --tls-key)`,
      );
    }
    if (tcpTls && options.tcp === undefined)
      throw new ServerError(ServerErrorCode.LISTEN_FAILED, 'tcpTls is set, but there is no tcp listener');
    if (rpcTls && options.rpc === undefined)
      throw new ServerError(ServerErrorCode.LISTEN_FAILED, 'rpcTls is set, but there is no json-rpc listener');
    if (listeners.length === 0) {
      logger.warn(
        'TLS certificate files are given, but no listener speaks TLS (--tcp-tls, --rpc-tls): they are not used',
      );
      return undefined;
    }
    const authClients = authClientsOf(tls);
    if (!['yes', 'no', 'optional'].includes(authClients))
      throw new ServerError(
        ServerErrorCode.LISTEN_FAILED,
        `tls.authClients must be yes, no or optional, not ${authClients}`,
      );
    if (authClients !== 'no' && tls.ca === undefined)
      throw new ServerError(
        ServerErrorCode.LISTEN_FAILED,
        `client certificates (authClients ${authClients}) are checked against a CA, but none is given (tls.ca; --tls-ca)`,
      );
    const credentials = await readCredentials(tls);
    const server = new ServerTls(tls, authClients, credentials, logger, admission);
    logger.info(
      `TLS on ${listeners.join(' and ')}: certificate for ${describe(credentials.certificate)}; client certificates: ${authClients}`,
    );
    server.#checkValidity();
    return server;
  }

  /** Connections accepted on a TLS listener whose handshake has not finished yet. */
  get handshakes(): number {
    return this.#handshaking.size;
  }

  /**
   * The TCP listener: a net server that looks at each connection's first byte, hands TLS to a
   * tls.Server, and calls `serve` with each socket whose handshake succeeded.
   */
  tcpServer(serve: (socket: TLSSocket) => void): NetServer {
    const tls = createTlsServer(this.#tlsOptions());
    this.#watch(tls, 'tcp');
    tls.on('secureConnection', (socket: TLSSocket) => {
      this.#handshaking.delete(hostPort(socket));
      const problem = this.#clientProblem(socket);
      if (problem === undefined) {
        // As on the plain listener: a client may send its requests and end its side; it still
        // gets every reply. (Not before: a client that ends its side mid-handshake is gone.)
        socket.allowHalfOpen = true;
        serve(socket);
        return;
      }
      this.#logFailure(socket, 'tcp', problem);
      this.#admission.refuse(socket, `-${ServerErrorCode.NOAUTH} TLS: ${problem}\r\n`);
    });
    // The TLSSocket takes allowHalfOpen from the raw socket.
    return createNetServer({ allowHalfOpen: false, noDelay: true }, (socket) => {
      if (!this.#admit(socket)) return;
      socket.setTimeout(TLS_HANDSHAKE_MS, () => {
        this.#logger.warn(
          `TLS handshake with ${hostPort(socket)} (tcp) failed: nothing received within ${TLS_HANDSHAKE_MS / 1000} s`,
        );
        socket.destroy();
      });
      socket.on('error', () => {});
      socket.once('data', (chunk: Buffer) => {
        socket.setTimeout(0);
        socket.pause();
        if (chunk[0] === HANDSHAKE_RECORD) {
          const handshake = this.#handshaking.get(hostPort(socket));
          if (handshake !== undefined) handshake.started = true;
          socket.unshift(chunk);
          tls.emit('connection', socket);
          return;
        }
        this.#handshaking.delete(hostPort(socket));
        this.#logger.warn(
          `refused a plain-text client from ${hostPort(socket)}: the tcp listener speaks TLS (it must connect with TLS: hati client --tls, redis-cli --tls)`,
        );
        this.#admission.refuse(
          socket,
          `-${ProtocolErrorCode.PROTOCOL} this port speaks TLS: connect with TLS (hati client --tls, redis-cli --tls)\r\n`,
        );
      });
    });
  }

  /**
   * The JSON-RPC listener over HTTPS: `handler` is the same request handler as over HTTP, behind
   * the client-certificate check (a refused client gets HTTP 401, `NOAUTH`).
   */
  httpsServer(options: HttpServerOptions, handler: (req: IncomingMessage, res: ServerResponse) => void): HttpsServer {
    const https = createHttpsServer({ ...options, ...this.#tlsOptions() }, (req, res) => {
      const problem = this.#clientProblem(req.socket as TLSSocket);
      if (problem === undefined) {
        handler(req, res);
        return;
      }
      this.#logFailure(req.socket as TLSSocket, 'json-rpc', problem);
      const body = errorBody(ServerErrorCode.NOAUTH, JSONRPC_INVALID_REQUEST, `TLS: ${problem}`);
      res.writeHead(401, { 'content-type': 'application/json', connection: 'close' });
      res.end(body);
    });
    this.#watch(https, 'json-rpc');
    // Registered after the server's own listener: the raw socket belongs to a TLSSocket already.
    https.on('connection', (socket: Socket) => {
      if (this.#admit(socket)) socket.on('error', () => {});
    });
    https.on('secureConnection', (socket: TLSSocket) => this.#handshaking.delete(hostPort(socket)));
    return https;
  }

  /**
   * Re-reads the files and serves them to new connections; connections already open keep the
   * certificate they have. Files that are missing or invalid are logged and change nothing.
   * Resolves true when the new files are in use.
   */
  async reload(): Promise<boolean> {
    let credentials: Credentials;
    try {
      credentials = await readCredentials(this.files);
    } catch (err) {
      this.#logger.error(`TLS reload failed, the certificate in use stays: ${(err as Error).message}`);
      return false;
    }
    this.#credentials = credentials;
    for (const server of this.#servers) server.setSecureContext(this.#contextOptions());
    this.#logger.info(`TLS reloaded: certificate for ${describe(credentials.certificate)}`);
    this.#checkValidity();
    return true;
  }

  /** Drops the connections still in their handshake (the server is shutting down). */
  close(): void {
    this.#closed = true;
    for (const { socket } of this.#handshaking.values()) socket.destroy();
    this.#handshaking.clear();
  }

  /** Counts an accepted connection as handshaking, or drops it when the server is full or closing. */
  #admit(socket: Socket): boolean {
    if (this.#closed) {
      socket.destroy();
      return false;
    }
    if (this.#admission.full()) {
      if (this.#overflow >= MAX_OVERFLOW_HANDSHAKES) {
        // A flood: no descriptor to spare for a handshake whose only outcome is a refusal.
        if (this.#logger.debugEnabled)
          this.#logger.debug(`TLS: dropped a connection from ${hostPort(socket)}: server full`);
        socket.destroy();
        return false;
      }
      // Its handshake goes on so that it can read MAX_CLIENTS (in TLS) from the server's own check.
      this.#overflow++;
      socket.once('close', () => this.#overflow--);
      return true;
    }
    const peer = hostPort(socket);
    const handshake: Handshake = { socket, started: false, logged: false };
    this.#handshaking.set(peer, handshake);
    socket.once('close', () => {
      if (this.#handshaking.get(peer) !== handshake) return;
      this.#handshaking.delete(peer);
      // A client that hangs up during its handshake (one that does not trust the certificate, in
      // Node's case) leaves Node a reset on a socket that no longer knows its peer: said here.
      if (handshake.started && !handshake.logged)
        this.#logger.warn(
          `TLS handshake with ${peer} (tcp) failed: the client closed the connection (does it trust the server certificate?)`,
        );
    });
    return true;
  }

  /** Logs each failed handshake once, with the reason; Node destroys the socket. */
  #watch(server: TlsServer, listener: 'tcp' | 'json-rpc'): void {
    this.#servers.push(server);
    server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      if (socket.remoteAddress === undefined && (err as NodeJS.ErrnoException).code === 'ECONNRESET') {
        // The client hung up: said with its address when the raw socket closed (TCP); over
        // HTTPS, a TCP health check does the same, so that is not worth a warning.
        if (this.#logger.debugEnabled) this.#logger.debug(`TLS: a client (${listener}) hung up during its handshake`);
        return;
      }
      this.#logFailure(socket, listener, handshakeProblem(err));
    });
  }

  /**
   * What is wrong with the client's certificate, or undefined when it may be served. Node is told
   * not to reject clients itself (it would end the connection without saying why, to the client
   * or to the log), so the policy is applied here, once the handshake is done.
   */
  #clientProblem(socket: TLSSocket): string | undefined {
    if (this.authClients === 'no' || socket.authorized) return undefined;
    if (socket.getPeerX509Certificate() === undefined)
      return this.authClients === 'yes' ? 'this server requires a client certificate (none was sent)' : undefined;
    return `client certificate refused: ${certificateProblem(String(socket.authorizationError), this.files.ca as string)}`;
  }

  #logFailure(socket: TLSSocket, listener: 'tcp' | 'json-rpc', problem: string): void {
    if (this.#failed.has(socket)) return;
    this.#failed.add(socket);
    const peer = socket.remoteAddress === undefined ? 'a client' : hostPort(socket);
    const handshake = this.#handshaking.get(peer);
    if (handshake !== undefined) handshake.logged = true;
    this.#logger.warn(`TLS handshake with ${peer} (${listener}) failed: ${problem}`);
  }

  #contextOptions(): SecureContextOptions {
    const { cert, key, ca } = this.#credentials;
    return { cert, key, ...(ca !== undefined && { ca }), minVersion: MIN_VERSION };
  }

  #tlsOptions(): TlsOptions {
    return {
      ...this.#contextOptions(),
      requestCert: this.authClients !== 'no',
      // Checked in #clientProblem, which can say why.
      rejectUnauthorized: false,
      handshakeTimeout: TLS_HANDSHAKE_MS,
    };
  }

  #checkValidity(): void {
    const { certificate } = this.#credentials;
    const now = Date.now();
    if (new Date(certificate.validTo).getTime() < now)
      this.#logger.warn(
        `the TLS certificate in ${this.files.cert} expired on ${new Date(certificate.validTo).toISOString()}: clients that verify it refuse to connect`,
      );
    else if (new Date(certificate.validFrom).getTime() > now)
      this.#logger.warn(
        `the TLS certificate in ${this.files.cert} is not valid before ${new Date(certificate.validFrom).toISOString()}: clients that verify it refuse to connect`,
      );
  }
}
