// INFO: the server's state in Redis's text format (`# Section` headers, `field:value` lines,
// CRLF), which Redis clients read when they connect (ioredis's ready check looks for
// `loading`) and tools such as redis-cli --stat show.
import type { StatsSnapshot } from './stats.js';
import { HATI_VERSION, REDIS_COMPATIBLE_VERSION } from './version.js';

type Section = [title: string, fields: Array<[string, string | number]>];

function sections(stats: StatsSnapshot): Record<string, Section> {
  const { tcp, unix, rpc } = stats.connections;
  const uptime = Math.floor(stats.uptimeMs / 1000);
  const { memory, hdd } = stats.storage;
  return {
    server: [
      'Server',
      [
        ['hati_version', HATI_VERSION],
        // Redis clients and tools read these; see version.ts.
        ['redis_version', REDIS_COMPATIBLE_VERSION],
        ['redis_mode', 'standalone'],
        ['process_id', process.pid],
        ['uptime_in_seconds', uptime],
        ['uptime_in_days', Math.floor(uptime / 86_400)],
      ],
    ],
    clients: [
      'Clients',
      [
        ['connected_clients', tcp.current + unix.current + rpc.current],
        ['tcp_clients', tcp.current],
        ['unix_clients', unix.current],
        ['rpc_clients', rpc.current],
        ['blocked_clients', 0],
        ['pubsub_clients', stats.clients.filter((client) => client.subscriptions + client.patterns > 0).length],
      ],
    ],
    memory: [
      'Memory',
      [
        ['used_memory', stats.memory.heapUsed + stats.memory.external],
        ['used_memory_rss', stats.memory.rss],
      ],
    ],
    persistence: [
      'Persistence',
      [
        ['loading', 0],
        ['hdd_state', hdd.state],
        ['hdd_durability', hdd.durability],
      ],
    ],
    stats: [
      'Stats',
      [
        ['total_connections_received', tcp.total + unix.total + rpc.total],
        ['total_commands_processed', stats.commands.processed],
        ['total_rpc_calls', stats.commands.rpcCalls],
        ['pubsub_channels', stats.pubsub.channels],
        ['pubsub_patterns', stats.pubsub.patterns],
        ['pubsub_messages_delivered', stats.pubsub.delivered],
      ],
    ],
    keyspace: [
      'Keyspace',
      [
        ['memory', `keys=${memory.keys}`],
        ['hdd', hdd.keys === null ? `keys=unknown,state=${hdd.state}` : `keys=${hdd.keys}`],
        // Both keyspaces together, where Redis tools (redis-cli --stat) look for the key count.
        ['db0', `keys=${memory.keys + (hdd.keys ?? 0)},expires=0,avg_ttl=0`],
      ],
    ],
  };
}

/**
 * The INFO text: every section, or the one named (any case; `all`, `default` and `everything`
 * name them all). An unknown section gives an empty text, as in Redis.
 */
export function infoText(stats: StatsSnapshot, section?: string): string {
  const all = sections(stats);
  const wanted = section?.toLowerCase();
  const names =
    wanted === undefined || wanted === 'all' || wanted === 'default' || wanted === 'everything'
      ? Object.keys(all)
      : Object.keys(all).filter((name) => name === wanted);
  return names
    .map((name) => {
      const [title, fields] = all[name] as Section;
      return `# ${title}\r\n${fields.map(([field, value]) => `${field}:${value}\r\n`).join('')}`;
    })
    .join('\r\n');
}
