# Sourced by the scripts in this folder: installs the pnpm version pinned in package.json
# (with npm, since Corepack's signature check cannot be relied on) and the locked dependencies.
want=$(node -p 'require("./package.json").packageManager.split("@")[1]')
if [ "$(pnpm --version 2>/dev/null || true)" != "$want" ]; then
  echo "installing pnpm@$want with npm" >&2
  npm install --global --no-fund --no-audit "pnpm@$want" >&2
fi
pnpm install --frozen-lockfile --prefer-offline >&2
