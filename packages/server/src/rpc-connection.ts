// What the JSON-RPC listener knows about one HTTP connection: its session, and the decisions
// that hold for every request on it, so that a keep-alive client does not pay for them again.
import type { Socket } from 'node:net';
import type { User } from './auth.js';
import { isLoopbackAddress, protectedModeDenies } from './net-address.js';
import type { Session } from './session.js';

/** Credentials accepted on a connection: the header as sent, whom it logged in, under which users. */
export interface RpcLogin {
  header: string;
  user: User;
  /** Auth's generation at login: a reload of the users makes the login be checked again. */
  generation: number;
}

/**
 * One HTTP connection of the JSON-RPC listener. The addresses of a socket do not change, so
 * whether its Host header is checked (it came to a loopback address) and whether protected mode
 * refuses it (it came from another machine) are decided once, when it opens. The Host header
 * and the credentials a keep-alive client sends are the same string on every request: the last
 * ones accepted are remembered and compared, which costs a string comparison instead of a parse
 * of the Host name, an HMAC or a rate-limiter lookup.
 */
export class RpcConnection {
  /** Undefined on a listener that runs no calls (the metrics listener). */
  readonly session: Session | undefined;
  /** Requests arrive on a loopback address: their Host header is checked (DNS rebinding). */
  readonly loopback: boolean;
  /** Protected mode refuses this client: it is not on this machine. */
  readonly protectedDenied: boolean;
  /** The last Host header that passed the check on this connection. */
  acceptedHost: string | undefined = undefined;
  /** The last credentials that logged in on this connection. */
  login: RpcLogin | undefined = undefined;

  constructor(socket: Socket, session: Session | undefined, protectedMode: boolean) {
    this.session = session;
    this.loopback = isLoopbackAddress(socket.localAddress);
    this.protectedDenied = protectedModeDenies(protectedMode, socket.remoteAddress);
  }
}
