import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { certificateDefaults, createCertificates } from '@hati/server/certificates';
import type { Argv } from 'yargs';
import type { Io } from './main.js';

export interface SelfSignedFlags {
  out: string;
  host?: string | string[];
  days?: number;
  force?: boolean;
}

/** The files written, and whether each is a private key (0600) or a certificate (0644). */
const FILES = [
  ['ca.crt', false],
  ['ca.key', true],
  ['server.crt', false],
  ['server.key', true],
  ['client.crt', false],
  ['client.key', true],
] as const;

/** The `hati tls` subcommands, for yargs; `setRun` receives what the chosen one does. */
export function tlsCommands(y: Argv, io: Io, setRun: (run: () => Promise<number>) => void): Argv {
  return y
    .command(
      'self-signed',
      'Write a CA, a server certificate and a client certificate signed by it, for development',
      (c) =>
        c
          .option('out', {
            type: 'string',
            requiresArg: true,
            demandOption: true,
            description: 'Directory to write ca.crt, ca.key, server.crt, server.key, client.crt and client.key to',
          })
          .option('host', {
            type: 'string',
            requiresArg: true,
            defaultDescription: certificateDefaults.hosts.join(', '),
            description: 'A host name or IP address the server certificate is valid for (repeatable)',
          })
          .option('days', {
            requiresArg: true,
            coerce: (value: unknown) => {
              const n = Number(value);
              if (!Number.isInteger(n) || n < 1 || n > 36500 || String(value).trim() === '') {
                throw new Error(`--days must be an integer from 1 to 36500, got '${String(value)}'`);
              }
              return n;
            },
            defaultDescription: String(certificateDefaults.days),
            description: 'Days the certificates are valid, from now',
          })
          .option('force', { type: 'boolean', description: 'Overwrite files already in --out' })
          .check((argv) => {
            if (String(argv.out).trim() === '') throw new Error('--out must name a directory');
            const hosts = argv.host === undefined ? [] : ([] as unknown[]).concat(argv.host);
            if (hosts.some((host) => String(host).trim() === '')) throw new Error('--host must not be empty');
            return true;
          })
          .epilogue(
            'The keys are written readable by their owner only (0600). The CA key can sign any certificate: these are for development and tests, not for production.',
          ),
      (args) => {
        setRun(() => selfSigned(args as unknown as SelfSignedFlags, io));
      },
    )
    .demandCommand(1, 'name what to make: hati tls self-signed --out <dir>');
}

/** A path as typed in a shell: quoted when it has characters the shell would read. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** `hati tls self-signed`: writes the six files and prints the flags that use them. */
export async function selfSigned(flags: SelfSignedFlags, io: Io): Promise<number> {
  const dir = resolve(flags.out);
  const hosts = flags.host === undefined ? undefined : ([] as string[]).concat(flags.host);
  const paths = FILES.map(([name, key]) => [join(dir, name), key] as const);
  const existing = FILES.filter((_, i) => existsSync((paths[i] as readonly [string, boolean])[0])).map(
    ([name]) => name,
  );
  if (existing.length > 0 && flags.force !== true) {
    io.stderr(`hati: ${dir} already has ${existing.join(', ')}; --force overwrites them\n`);
    return 1;
  }
  const made = createCertificates({
    ...(hosts !== undefined && { hosts }),
    ...(flags.days !== undefined && { days: flags.days }),
  });
  const contents = [made.ca.cert, made.ca.key, made.server.cert, made.server.key, made.client.cert, made.client.key];
  try {
    // The directory holds private keys: only its owner may list it, when it is made here.
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const [i, [path, key]] of paths.entries()) {
      // Removed first, so that a file kept from before cannot keep a wider mode than 0600.
      if (flags.force === true) await unlink(path).catch(() => {});
      await writeFile(path, contents[i] as string, { mode: key ? 0o600 : 0o644, flag: 'wx' });
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    io.stderr(`hati: cannot write ${e.path ?? dir}: ${e.code ?? e.message}\n`);
    return 1;
  }
  const until = new X509Certificate(made.server.cert).validTo;
  const file = (name: string) => shellWord(join(dir, name));
  io.stdout(
    [
      `hati: wrote ${FILES.map(([name]) => name).join(', ')} to ${dir}`,
      `hati: the server certificate is for ${(hosts ?? certificateDefaults.hosts).join(', ')}, valid until ${until}; for development only`,
      'Start a server with them (clients must then show client.crt; --tls-auth-clients no or optional relaxes that):',
      `  hati start --tcp-tls --tls-cert ${file('server.crt')} --tls-key ${file('server.key')} --tls-ca ${file('ca.crt')}`,
      'Connect:',
      `  hati client --tls --tls-ca ${file('ca.crt')} --tls-cert ${file('client.crt')} --tls-key ${file('client.key')}`,
      `  redis-cli -p 4242 --tls --cacert ${file('ca.crt')} --cert ${file('client.crt')} --key ${file('client.key')}`,
      '',
    ].join('\n'),
  );
  return 0;
}
