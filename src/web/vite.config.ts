/**
 * Vite build of the web UI. Root is this folder; the bundle goes to <repo>/dist/web, which the
 * API server serves at `/` (any non-API GET falls back to index.html so client routes reload).
 * `npm run build:web` runs this; during UI work `npx vite --config src/web/vite.config.ts` serves
 * it with /v1 proxied to a shipclock on SHIPCLOCK_URL (default http://127.0.0.1:8080).
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const here = path.dirname(fileURLToPath(import.meta.url));
const api = process.env.SHIPCLOCK_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  root: here,
  base: '/',
  plugins: [react()],
  build: {
    outDir: path.resolve(here, '../../dist/web'),
    emptyOutDir: true,
    // antd is one big shared chunk by nature; the budget that matters (first page ≤ 500 KB
    // gzipped) is checked by test/browser/budget.test.ts, not by this warning.
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: {
      '/v1': { target: api, changeOrigin: true },
    },
  },
});
