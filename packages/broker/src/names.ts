import { BrokerError } from './errors.js';

/** Longest router or queue name, in characters (all ASCII). */
export const MAX_NAME = 200;
/** Longest routing or binding key, in bytes of UTF-8. */
export const MAX_ROUTING_KEY = 1024;

const NAME = /^[A-Za-z0-9_.:/-]+$/;

/** Throws NAME_INVALID unless `name` is a usable router or queue name. */
export function checkName(what: 'router' | 'queue', name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME || !NAME.test(name)) {
    throw new BrokerError(
      'NAME_INVALID',
      `invalid ${what} name '${String(name).slice(0, 64)}': 1 to ${MAX_NAME} characters of A-Z a-z 0-9 _ - . : /`,
    );
  }
}

/** Throws ROUTING_KEY_INVALID unless `key` is a usable routing or binding key (empty is allowed). */
export function checkRoutingKey(what: 'routing key' | 'binding key', key: string): void {
  if (typeof key !== 'string' || Buffer.byteLength(key) > MAX_ROUTING_KEY) {
    throw new BrokerError('ROUTING_KEY_INVALID', `a ${what} is text of at most ${MAX_ROUTING_KEY} bytes`);
  }
}
