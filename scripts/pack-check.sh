#!/usr/bin/env bash
# What a user installs, checked: packs every publishable package, installs the tarballs into an
# empty project with pnpm's strict layout, then runs the installed `hati`: starts a server,
# PINGs it with `hati client`, stops it with SIGTERM and expects exit status 0. It also
# require()s and imports every package from that project. The workspace hides what this
# catches: a run-time import listed only in devDependencies, a file left out of "files", an
# exports map that does not resolve.
#
# The packages' `workspace:*` dependencies become plain versions in the tarballs; the
# packages are not on the registry, so `pnpm.overrides` maps every @hati/* name to its tarball.
# The registry is used (offline first) for the third-party dependencies only.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
started=$SECONDS
# HATI_<FLAG> variables would change what `hati` does here.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^HATI_' || true)

work=$(mktemp -d "${TMPDIR:-/tmp}/hati-pack-check.XXXXXX")
server_pid=""
cleanup() {
  if [[ -n $server_pid ]]; then
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "pack-check: FAIL: $*" >&2
  exit 1
}

# Bounded wait: true once `$1` (a command) succeeds, false after `$2` tenths of a second.
wait_for() {
  local i
  for ((i = 0; i < $2; i++)); do
    if eval "$1"; then return 0; fi
    sleep 0.1
  done
  return 1
}

echo "pack-check: [$((SECONDS - started)) s] building"
TURBO_TELEMETRY_DISABLED=1 TURBO_NO_UPDATE_NOTIFIER=1 pnpm exec turbo run build --output-logs=errors-only >/dev/null

echo "pack-check: [$((SECONDS - started)) s] packing"
mkdir -p "$work/tarballs" "$work/project" "$work/data"
: >"$work/packed.jsonl"
for dir in packages/*/; do
  if [[ $(node -p "require('./${dir}package.json').private === true") == true ]]; then continue; fi
  (cd "$dir" && pnpm pack --json --pack-destination "$work/tarballs") |
    node -e 'let s = ""; process.stdin.on("data", (c) => (s += c)).on("end", () => {
      const { name, filename } = JSON.parse(s); console.log(JSON.stringify({ name, filename })); })' \
      >>"$work/packed.jsonl"
done

# Only @hati/cli is a direct dependency: were every package one, the project's own
# node_modules would be on each package's resolution path and hide an undeclared dependency.
# The others come in as the cli's (transitive) dependencies, from their tarballs, and are
# checked by require()/import through the package that depends on them.
node - "$work" <<'EOF'
const { readFileSync, writeFileSync } = require('node:fs');
const work = process.argv[2];
const packed = readFileSync(`${work}/packed.jsonl`, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
const overrides = Object.fromEntries(packed.map(({ name, filename }) => [name, `file:${filename}`]));
if (!overrides['@hati/cli']) throw new Error('@hati/cli was not packed');
const manifest = {
  name: 'hati-pack-check',
  private: true,
  dependencies: { '@hati/cli': overrides['@hati/cli'] },
  pnpm: { overrides, onlyBuiltDependencies: ['classic-level'] },
};
writeFileSync(`${work}/project/package.json`, `${JSON.stringify(manifest, null, 2)}\n`);
EOF
# Strict: nothing hoisted into node_modules/.pnpm/node_modules, where any package could reach it.
printf 'node-linker=isolated\nhoist=false\n' >"$work/project/.npmrc"

echo "pack-check: [$((SECONDS - started)) s] installing $(wc -l <"$work/packed.jsonl" | tr -d ' ') tarballs"
if ! (cd "$work/project" && pnpm install --prefer-offline --no-frozen-lockfile --reporter=append-only) >"$work/install.log" 2>&1; then
  cat "$work/install.log" >&2
  fail "pnpm install of the tarballs failed"
fi
for name in $(node -e 'for (const l of require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n")) console.log(JSON.parse(l).name)' "$work/packed.jsonl"); do
  compgen -G "$work/project/node_modules/.pnpm/${name/\//+}@file+*" >/dev/null || fail "$name was not installed from its tarball"
done

echo "pack-check: [$((SECONDS - started)) s] require() and import of every package"
# Each package is resolved from the package that depends on it, as its users' code would be.
(cd "$work/project" && node --input-type=module -e '
  import { createRequire } from "node:module";
  // require.resolve gives the real path, inside node_modules/.pnpm: resolving from there is
  // resolving as that package does.
  const from = (name, req) => createRequire(req.resolve(name));
  const root = createRequire(`${process.cwd()}/`);
  const cli = from("@hati/cli", root);
  const server = from("@hati/server", cli);
  const checks = [
    ["@hati/cli", root, "main"],
    ["@hati/client", cli, "createClient"],
    ["@hati/server", cli, "HatiServer"],
    ["@hati/protocol", cli, "encodeCommand"],
    ["@hati/storage", server, "StorageManager"],
  ];
  for (const [name, req, fn] of checks) {
    const required = req(name);
    const imported = await import(req.resolve(name));
    if (typeof required[fn] !== "function" || required[fn] !== imported[fn]) throw new Error(`${name}: ${fn} is not the same function through require() and import`);
    console.log(`  ${name}: ${Object.keys(required).length} exports`);
  }
') || fail "a package cannot be loaded"

port=$(node -e 'const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
hati="$work/project/node_modules/.bin/hati"
[[ -x $hati ]] || fail "node_modules/.bin/hati is missing"

echo "pack-check: [$((SECONDS - started)) s] hati start --tcp-port $port"
"$hati" start --tcp-port "$port" --tcp-host 127.0.0.1 --data-dir "$work/data" >"$work/server.log" 2>&1 &
server_pid=$!
alive() { kill -0 "$server_pid" 2>/dev/null && [[ $(ps -o stat= -p "$server_pid") != Z* ]]; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
if ! wait_for 'listening || ! alive' 200 || ! alive; then
  cat "$work/server.log" >&2
  fail "the server did not listen on $port within 20 s"
fi

reply=$(timeout 20 "$hati" client --tcp-port "$port" PING 2>&1) || fail "hati client PING failed: $reply"
[[ $reply == PONG ]] || fail "hati client PING printed '$reply', not PONG"
echo "pack-check: [$((SECONDS - started)) s] hati client PING -> $reply"

kill -TERM "$server_pid"
if ! wait_for '! alive' 100; then
  cat "$work/server.log" >&2
  fail "the server did not exit within 10 s of SIGTERM"
fi
status=0
wait "$server_pid" || status=$?
server_pid=""
if [[ $status -ne 0 ]]; then
  cat "$work/server.log" >&2
  fail "the server exited with status $status after SIGTERM"
fi
echo "pack-check: [$((SECONDS - started)) s] the server exited 0 after SIGTERM"
echo "pack-check: ok in $((SECONDS - started)) s"
