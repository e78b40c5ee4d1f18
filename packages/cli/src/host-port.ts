/** `127.0.0.1:4242`, or `[::1]:4242` for an IPv6 address, as URLs and redis-cli write them. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
