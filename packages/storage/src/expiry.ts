// The one expiry rule of both engines.
//
// Clocks read whole milliseconds: a key set at real time 1000.9 reads Date.now() = 1000 and gets
// expiresAt = 1000 + N. Calling it expired once `now >= expiresAt` would drop it when only
// N - 0.9 ms have passed. Calling it expired only once `now > expiresAt` means the clock has
// reached 1001 + N, so more than N ms have passed: a key with ttl N is readable for at least N ms.

/** True when a key with this expiry (0 = never) is expired at `now`. */
export function isExpired(expiresAt: number, now: number): boolean {
  return expiresAt !== 0 && now > expiresAt;
}

/**
 * What `ttl()` reports for a live key: the ms left, and at least 1 for a key that has an expiry,
 * since it is still live at `now === expiresAt` and 0 would mean "never expires".
 */
export function remainingMs(expiresAt: number, now: number): number {
  return expiresAt === 0 ? 0 : Math.max(1, expiresAt - now);
}
