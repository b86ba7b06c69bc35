/**
 * Structured JSON logs (pino), one line per event, level from LOG_LEVEL; LOG_FORMAT=pretty (the
 * default on a terminal) prints readable lines instead, through pino-pretty, after redaction. Fields that may hold
 * secrets are redacted wherever they appear in a logged object, down to four levels deep (a
 * request body's `target.secret`, a credential's `secret_access_key`, any `authorization`
 * header). Log lines about a deployment carry `deployment_id`, `app` and `team`: use
 * deploymentLogger().
 */
import { createRequire } from 'node:module';
import pino from 'pino';
import type PinoPretty from 'pino-pretty';

/** Keys whose values never reach a log line. */
export const SECRET_KEYS = [
  'password', 'new_password', 'admin_password', 'adminPassword', 'password_hash',
  'token', 'access_token', 'refresh_token', 'session_token', 'id_token',
  'secret', 'secret_access_key', 'access_key_id', 'secretKey', 'secret_key', 'api_key', 'apiKey',
  'authorization', 'cookie', 'set-cookie', 'x-shipclock-signature', 'databaseUrl', 'DATABASE_URL',
];

// fast-redact (pino's redactor) matches exact paths with `*` per level, not "any depth": list
// each key at the top level and under one to three levels of nesting.
export const REDACT_PATHS = SECRET_KEYS.flatMap((key) => {
  const k = /^[A-Za-z_$][\w$]*$/.test(key) ? key : `["${key}"]`;
  const join = (prefix: string) => (k.startsWith('[') ? `${prefix.replace(/\.$/, '')}${k}` : `${prefix}${k}`);
  return ['', '*.', '*.*.', '*.*.*.'].map((prefix) => (prefix === '' && k.startsWith('[') ? k : join(prefix)));
});

export type Logger = pino.Logger;

const SECRET_PARAMS = new Set(SECRET_KEYS.map((k) => k.toLowerCase()));

/**
 * A URL with the values of secret query parameters (`?token=` of the calendar feed,
 * `?access_token=` of the event stream, any name in SECRET_KEYS) replaced by "[redacted]".
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const query = url.slice(q + 1).replace(/([^&=#]+)=([^&#]*)/g, (all, name: string) => {
    let key = name;
    try { key = decodeURIComponent(name.replace(/\+/g, ' ')); } catch { /* keep it raw */ }
    return SECRET_PARAMS.has(key.toLowerCase()) ? `${name}=[redacted]` : all;
  });
  return `${url.slice(0, q)}?${query}`;
}

/**
 * Serializers for the keys that carry URLs: a logged request (`req`, which Fastify's request
 * logging would write) and any `url`. Fastify's own request lines are off (src/api/app.ts), but a
 * line that names a URL must not carry a token in its query string.
 */
const serializers: pino.LoggerOptions['serializers'] = {
  req: (r: unknown) => {
    if (!r || typeof r !== 'object' || typeof (r as { url?: unknown }).url !== 'string') return r;
    const req = r as { id?: unknown; method?: unknown; url: string; ip?: unknown };
    return { id: req.id, method: req.method, url: redactUrl(req.url), ...(req.ip === undefined ? {} : { ip: req.ip }) };
  },
  url: (u: unknown) => (typeof u === 'string' ? redactUrl(u) : u),
};

/**
 * `format: 'pretty'` writes readable lines (time, level, message, then the fields) to
 * `destination` (default stdout), colored when stdout is a terminal. pino redacts before either
 * format sees the object, so a secret is "[redacted]" in both.
 */
export function createLogger(level: string, destination?: pino.DestinationStream, format: 'json' | 'pretty' = 'json'): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'shipclock', pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers,
  };
  if (format === 'pretty') return pino(options, prettyStream(destination));
  return pino(options, destination);
}

function prettyStream(destination: pino.DestinationStream | undefined): pino.DestinationStream {
  // Loaded only for pretty output: a server writing JSON never pays for it.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return pretty({
    colorize: destination === undefined && process.stdout.isTTY === true,
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
    ignore: 'pid,hostname,service',
    singleLine: true,
    sync: true,
    ...(destination ? { destination: destination as unknown as NodeJS.WritableStream } : {}),
  });
}

/** A child logger whose every line names the deployment, its app and its team. */
export function deploymentLogger(
  logger: Logger,
  d: { deploymentId: string; app: string; team: string },
): Logger {
  return logger.child({ deployment_id: d.deploymentId, app: d.app, team: d.team });
}
