#!/usr/bin/env node
// The one executable. shipclock runs its TypeScript sources through tsx, so there is no build
// step to forget and no generated output to ship (only the web UI is built, by Vite).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
