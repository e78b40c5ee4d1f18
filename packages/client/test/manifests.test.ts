// Every package's `dependencies` name exactly the packages its src/ imports at run time: one
// missing breaks an install from the registry (pnpm's strict layout, or npm when the
// devDependency is absent), one extra weighs on every user. Type-only imports are not counted.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';

const root = new URL('../../../', import.meta.url).pathname;

/** The bare package names a source file loads at run time (`node:` built-ins left out). */
function runtimeImports(source: string): string[] {
  const specifiers = [
    // import x from 'p', import { a, type B } from 'p', export { a } from 'p' (not `import type`/`export type`)
    ...source.matchAll(/^\s*(?:import|export)\s+(?!type\s)[^;'"]*?\sfrom\s+'([^']+)'/gm),
    // import 'p', import('p'), require('p'), import x = require('p')
    ...source.matchAll(/^\s*import\s+'([^']+)'/gm),
    ...source.matchAll(/\b(?:import|require)\(\s*'([^']+)'\s*\)/g),
    // createRequire(import.meta.url)('p'), for a CommonJS package whose exports ESM cannot list
    ...source.matchAll(/\bcreateRequire\([^)]*\)\(\s*'([^']+)'\s*\)/g),
  ].map((m) => m[1] as string);
  return specifiers
    .filter((s) => !s.startsWith('.') && !s.startsWith('node:'))
    .map((s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : (s.split('/')[0] as string)));
}

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && /\.(c|m)?ts$/.test(e.name) && !e.name.endsWith('.d.ts'))
    .map((e) => join(e.parentPath, e.name));
}

t.test('each package depends on exactly what its src/ imports at run time', async (t) => {
  const packages = await readdir(join(root, 'packages'));
  t.ok(packages.length >= 5, `found the packages: ${packages.join(', ')}`);
  for (const dir of packages) {
    const manifest = JSON.parse(await readFile(join(root, 'packages', dir, 'package.json'), 'utf8')) as {
      name: string;
      dependencies?: Record<string, string>;
    };
    const imported = new Set<string>();
    for (const file of await sourceFiles(join(root, 'packages', dir, 'src'))) {
      for (const name of runtimeImports(await readFile(file, 'utf8'))) imported.add(name);
    }
    imported.delete(manifest.name);
    t.same(
      Object.keys(manifest.dependencies ?? {}).sort(),
      [...imported].sort(),
      `${manifest.name}: dependencies are the run-time imports of src/`,
    );
  }
});

t.test('the import scan reads what it should', async (t) => {
  const source = [
    "import { a, type B } from 'kept-a';",
    "import type { C } from 'type-only';",
    "export type { D } from 'type-only-too';",
    "export { e } from '@scope/kept-b/sub';",
    "import yargs, { type Argv } from 'kept-c';",
    "import {\n  f,\n  type G,\n} from 'kept-d';",
    "import os = require('node:os');",
    "import('./local.js');",
    "await import('kept-e');",
    "const forge = createRequire(import.meta.url)('kept-f') as typeof Forge;",
  ].join('\n');
  t.same(runtimeImports(source).sort(), ['@scope/kept-b', 'kept-a', 'kept-c', 'kept-d', 'kept-e', 'kept-f']);
});
