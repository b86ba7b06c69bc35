#!/usr/bin/env node
// `npm run build:server`: bundles shipclock's TypeScript sources (src/cli/main.ts and what it
// imports, not node_modules) into dist/server/main.js with esbuild. bin/shipclock.js runs that
// bundle when it is newer than every source file, and the sources through tsx otherwise, so an
// edit never runs stale code. Why a bundle at all: tsx compiles in a loader thread with its own
// V8 heap, which costs a running server about 35 MB of memory (docs/decisions/0002).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: [path.join(root, 'src/cli/main.ts')],
  outfile: path.join(root, 'dist/server/main.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  packages: 'external',
  logLevel: 'warning',
});
