/**
 * The client's config file: the server URL and the bearer token from `shipclock login`.
 * `$SHIPCLOCK_CONFIG`, default ~/.config/shipclock/config.json, always mode 0600 because the
 * token acts as the user until it expires. SHIPCLOCK_URL / SHIPCLOCK_TOKEN override it (CI).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface ClientConfig {
  url: string;
  token: string;
}

export class NotLoggedInError extends Error {}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.SHIPCLOCK_CONFIG || path.join(os.homedir(), '.config', 'shipclock', 'config.json');
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): ClientConfig {
  let fromFile: Partial<ClientConfig> = {};
  const file = configPath(env);
  try {
    fromFile = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<ClientConfig>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  const url = env.SHIPCLOCK_URL || fromFile.url;
  const token = env.SHIPCLOCK_TOKEN || fromFile.token;
  if (!url || !token) throw new NotLoggedInError(`not logged in (no token in ${file}): run "shipclock login --url URL --email E --password P"`);
  return { url: url.replace(/\/+$/, ''), token };
}

/** Writes atomically (temp file + rename) with mode 0600, in a directory only the user can read. */
export function writeConfig(cfg: ClientConfig, env: NodeJS.ProcessEnv = process.env): string {
  const file = configPath(env);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ url: cfg.url, token: cfg.token }, null, 2) + '\n', { mode: 0o600 });
  fs.chmodSync(tmp, 0o600); // the mode above is subject to umask and to an existing file's mode
  fs.renameSync(tmp, file);
  return file;
}
