// Real disks for the data-safety tests: a size-limited tmpfs (root only) and a filler file that
// takes every free byte, so that the store itself runs into ENOSPC.
import { execFileSync } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const isRoot = process.getuid?.() === 0;

/**
 * Why the tmpfs tests cannot run here (as a tap skip reason), or false when they can: they need
 * root, and a root without the right to mount (some containers) cannot run them either.
 */
export const tmpfsSkip: string | false = await (async () => {
  if (!isRoot) return 'needs root: mounts a 4 MiB tmpfs to fill the disk for real';
  try {
    await unmountTmpfs(await mountTmpfs('64k'));
    return false;
  } catch (err) {
    return `cannot mount a tmpfs here (${(err as Error).message.split('\n')[0]})`;
  }
})();

/** Mounts a fresh tmpfs of `size` (e.g. '4m') and returns its directory. */
export async function mountTmpfs(size: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hati-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  return dir;
}

export async function unmountTmpfs(dir: string): Promise<void> {
  execFileSync('umount', [dir]);
  await rm(dir, { recursive: true, force: true });
}

/** Writes `path` until the disk is full (ENOSPC); returns the bytes written. */
export async function fillDisk(path: string): Promise<number> {
  const file = await open(path, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0xaa);
  let written = 0;
  try {
    // Smaller and smaller writes take the last pages too.
    for (let size = chunk.length; size >= 512; size >>= 1) {
      for (;;) {
        try {
          const { bytesWritten } = await file.write(chunk, 0, size);
          written += bytesWritten;
          if (bytesWritten < size) break;
        } catch (err) {
          if ((err as { code?: string }).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
    return written;
  } finally {
    await file.close();
  }
}
