/**
 * Where shipclock's files are on disk, whether it runs from its TypeScript sources (tsx) or from
 * the server bundle in dist/server (see bin/shipclock.js): the package root is the nearest
 * folder above this module that holds shipclock's package.json.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'shipclock') return dir;
    if (path.dirname(dir) === dir) throw new Error(`shipclock's package.json not found above ${from}`);
  }
}

export const PACKAGE_ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));
/** The forward-only SQL migrations. */
export const MIGRATIONS_DIR = path.join(PACKAGE_ROOT, 'src/db/migrations');
/** The web UI as Vite builds it (`npm run build:web`, run by `prepare`). */
export const WEB_DIR = path.join(PACKAGE_ROOT, 'dist/web');
