import { isIP, type Socket } from 'node:net';

/** A socket's peer as `host:port`, IPv6 in brackets. */
export function hostPort(socket: Socket): string {
  const host = socket.remoteAddress ?? 'unknown';
  return `${host.includes(':') ? `[${host}]` : host}:${socket.remotePort}`;
}

/**
 * True for an address of this machine's loopback interface: 127.0.0.0/8, ::1, and the
 * IPv4-mapped form ::ffff:127.x.x.x that a dual-stack listener reports for IPv4 clients.
 * Undefined (a UNIX socket peer) is local too.
 */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined || address === '') return true;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return address === '::1';
}

/**
 * Protected mode's decision for one TCP or HTTP client: refused unless it is on this machine.
 * An unknown address (the socket is already gone) is refused too.
 */
export function protectedModeDenies(protectedMode: boolean, remoteAddress: string | undefined): boolean {
  return protectedMode && (remoteAddress === undefined || !isLoopbackAddress(remoteAddress));
}

/** What a client refused by protected mode is told, on either listener. */
export function protectedModeMessage(listener: 'TCP' | 'JSON-RPC'): string {
  return (
    `Hati is running in protected mode because no credentials are configured and the ${listener} listener is ` +
    'bound to a non-loopback address: only clients on this machine (loopback) may connect. To serve only ' +
    'this machine, bind to 127.0.0.1; to allow remote clients on a trusted network, restart with ' +
    '--protected-mode no, or configure credentials (--password or --users-file).'
  );
}

/** True for a bind address that only this machine can reach (`localhost`, 127.x, ::1). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || (host !== '' && isLoopbackAddress(host));
}
