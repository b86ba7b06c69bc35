#!/usr/bin/env node
// The one executable. It runs the bundle that `npm run build:server` (part of `prepare`, so of
// `npm ci`) writes to dist/server/main.js when that bundle is newer than every source file under
// src/ (web UI excluded); otherwise, e.g. right after an edit, it runs the TypeScript sources
// through tsx. SHIPCLOCK_FROM_SOURCE=1 always runs the sources. An installed package (npm pack,
// `npx shipclock`, the container image) holds no TypeScript sources: it always runs the bundle.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bundle = path.join(root, 'dist/server/main.js');

function newestSource(dir) {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (p !== path.join(root, 'src/web')) newest = Math.max(newest, newestSource(p));
    } else if (e.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

function bundleIsFresh() {
  if (!fs.existsSync(path.join(root, 'src/cli/main.ts'))) return true;
  if (process.env.SHIPCLOCK_FROM_SOURCE === '1') return false;
  try {
    return fs.statSync(bundle).mtimeMs >= newestSource(path.join(root, 'src'));
  } catch {
    return false;
  }
}

if (bundleIsFresh()) {
  await import(bundle);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
