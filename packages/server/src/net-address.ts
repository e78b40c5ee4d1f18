import { isIP } from 'node:net';

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

/** True for a bind address that only this machine can reach (`localhost`, 127.x, ::1). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || (host !== '' && isLoopbackAddress(host));
}
