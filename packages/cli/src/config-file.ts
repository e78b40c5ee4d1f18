// `hati start --config <file>`: the flags of `hati start` as keys of a YAML or TOML file, and
// `--print-config`, which writes the effective settings back in the same shape.
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
// The YAML and TOML libraries are loaded when a config file is read or printed: most runs of
// `hati` (a one-shot `hati client`) use neither.

export type ConfigFormat = 'yaml' | 'toml';

/** A config file that cannot be used, as one line naming the file (and the key, when one is at fault). */
export class ConfigFileError extends Error {
  override name = 'ConfigFileError';
}

/** What the keys of a config file may be: yargs (camelCase) names; `booleans` take true or false. */
export interface ConfigKeys {
  names: readonly string[];
  booleans: ReadonlySet<string>;
}

/** Keys whose flag takes a comma-separated list: the file may give a list instead. */
const LIST_KEYS: ReadonlySet<string> = new Set(['rpcCorsOrigins', 'rpcHosts']);
/** Keys whose flag takes yes or no: `console: false` (YAML, TOML) means no. */
const YES_NO_KEYS: ReadonlySet<string> = new Set(['protectedMode', 'console', 'tlsAuthClients']);
/** Flags of `hati start` that only make sense on the command line. */
const COMMAND_LINE_ONLY: ReadonlySet<string> = new Set(['config', 'print-config']);
/** Keys never printed: --print-config shows that they are set, not what they are. */
const SECRET_KEYS: ReadonlySet<string> = new Set(['password']);

/** tcpPort → tcp-port: keys are the flags as typed. */
export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** tcp-port → tcpPort. */
function camel(key: string): string {
  return key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * The config file named by --config (the last one given) or else HATI_CONFIG, or undefined. Read
 * before yargs parses, since its values are what yargs parses the command line over.
 */
export function configPath(argv: readonly string[], env: NodeJS.ProcessEnv): string | undefined {
  let path: string | undefined;
  const end = argv.indexOf('--');
  const args = end === -1 ? argv : argv.slice(0, end);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--config' && i + 1 < args.length) path = args[++i];
    else if (arg.startsWith('--config=')) path = arg.slice('--config='.length);
  }
  return path ?? (env.HATI_CONFIG === '' ? undefined : env.HATI_CONFIG);
}

/** YAML unless the file ends in .toml. */
export function configFormat(path: string | undefined): ConfigFormat {
  return path !== undefined && extname(path).toLowerCase() === '.toml' ? 'toml' : 'yaml';
}

/** The fewest single-character edits that turn `a` into `b`. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/** `did you mean tcp-port?` for a key close to a known one; else where the keys are listed. */
function suggestion(key: string, known: readonly string[]): string {
  const candidates = known.map((name) => kebab(name));
  // A camelCase or snake_case spelling of a known key is that key.
  const spelled = kebab(key).replaceAll('_', '-').toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const d = distance(spelled, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  if (best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 4))) return `did you mean ${best}?`;
  return 'the keys are the flags of hati start without -- (hati start --help lists them)';
}

/** The first line of a parser's message, with where it is: `Map keys must be unique at line 2, column 1`. */
function parseProblem(err: unknown, format: ConfigFormat): string {
  const message = ((err as Error).message ?? String(err)).split('\n')[0]?.replace(/:$/, '') ?? '';
  if (format === 'toml') {
    const { line, column } = err as { line?: number; column?: number };
    const detail = message.replace(/^Invalid TOML document: /, '');
    return line === undefined ? detail : `${detail} at line ${line}, column ${column}`;
  }
  return message;
}

/**
 * A value of the file as yargs would get it from the command line or HATI_*: a string (so that
 * it is checked by the flag's own check, with the flag's own message), or a boolean for a
 * boolean flag. Throws for a value no flag could take.
 */
function flagValue(name: string, value: unknown, keys: ConfigKeys, where: string): string | boolean {
  const key = kebab(name);
  if (keys.booleans.has(name)) {
    if (typeof value === 'boolean') return value;
    throw new ConfigFileError(`${where}: ${key} must be true or false, got ${JSON.stringify(value)}`);
  }
  if (SECRET_KEYS.has(name) && typeof value !== 'string') {
    // `password: 0123` would be the number 123: a password is only ever a string, quoted.
    throw new ConfigFileError(`${where}: ${key} must be a quoted string`);
  }
  if (typeof value === 'boolean' && YES_NO_KEYS.has(name)) return value ? 'yes' : 'no';
  if (Array.isArray(value) && LIST_KEYS.has(name) && value.every((item) => typeof item === 'string')) {
    return value.join(',');
  }
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'bigint') return value.toString();
  const what = value === null ? 'no value' : Array.isArray(value) ? 'a list' : 'a table of keys';
  throw new ConfigFileError(
    `${where}: ${key} has ${what}; it takes what --${key} takes${LIST_KEYS.has(name) ? ' (or a list of strings)' : ''}`,
  );
}

/**
 * The settings of a config file as yargs configuration (camelCase names, string or boolean
 * values). Throws a ConfigFileError for a file that cannot be read or parsed, an unknown key
 * (with the key it resembles) or a value no flag takes.
 */
export async function readConfigFile(path: string, keys: ConfigKeys): Promise<Record<string, string | boolean>> {
  const format = configFormat(path);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const words: Record<string, string> = {
      ENOENT: 'no such file',
      EACCES: 'permission denied',
      EISDIR: 'a directory, not a file',
    };
    throw new ConfigFileError(
      `cannot read --config ${path}: ${code !== undefined && code in words ? `${words[code]} (${code})` : (err as Error).message}`,
    );
  }
  let document: unknown;
  try {
    document = format === 'toml' ? (await import('smol-toml')).parse(text) : (await import('yaml')).parse(text);
  } catch (err) {
    throw new ConfigFileError(`--config ${path} is not valid ${format.toUpperCase()}: ${parseProblem(err, format)}`);
  }
  // An empty YAML file (or one of comments only) sets nothing.
  if (document === null || document === undefined) return {};
  if (typeof document !== 'object' || Array.isArray(document)) {
    throw new ConfigFileError(`--config ${path}: expected keys and values (tcp-port: 5000), not a single value`);
  }
  const known = new Set(keys.names);
  const settings: Record<string, string | boolean> = {};
  for (const [key, value] of Object.entries(document)) {
    const name = camel(key);
    // Only the spelling --print-config writes: one key, one way, so a file is read as it looks.
    if (COMMAND_LINE_ONLY.has(key)) {
      throw new ConfigFileError(`--config ${path}: '${key}' is for the command line only (--${key}), not a key`);
    }
    if (!known.has(name) || kebab(name) !== key) {
      throw new ConfigFileError(`--config ${path}: unknown key '${key}'; ${suggestion(key, keys.names)}`);
    }
    settings[name] = flagValue(name, value, keys, `--config ${path}`);
  }
  return settings;
}

/**
 * The effective settings of `hati start` as a config file (YAML or TOML): every key that has a
 * value, in the order of `names`; secrets as `<redacted>`. Feeding it back as --config gives the
 * same settings (but the password).
 */
export async function formatSettings(
  flags: Record<string, unknown>,
  names: readonly string[],
  format: ConfigFormat,
  source: string | undefined,
): Promise<string> {
  const settings: Record<string, unknown> = {};
  for (const name of names) {
    const value = flags[name];
    if (value === undefined) continue;
    settings[kebab(name)] = SECRET_KEYS.has(name) ? '<redacted>' : value;
  }
  const header = `# hati start: effective settings (command line > HATI_* > ${source ?? 'config file'} > defaults)\n`;
  return (
    header +
    (format === 'toml'
      ? `${(await import('smol-toml')).stringify(settings)}\n`
      : (await import('yaml')).stringify(settings))
  );
}
