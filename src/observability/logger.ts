/**
 * Structured JSON logs (pino), one line per event, level from LOG_LEVEL; LOG_FORMAT=pretty (the
 * default on a terminal) prints readable lines instead, through pino-pretty, after redaction. Fields that may hold
 * secrets are redacted wherever they appear in a logged object, down to six levels deep (a
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

const SECRET_KEY_SET = new Set(SECRET_KEYS.map((k) => k.toLowerCase()));
/** How deep into a logged object secret keys are looked for (the line's own fields are depth 0). */
const REDACT_DEPTH = 6;
const CENSOR = '[redacted]';

/**
 * A logged object with the value of every key in SECRET_KEYS (any case) replaced by "[redacted]",
 * down to REDACT_DEPTH levels, in plain objects, arrays and errors (an error becomes its pino
 * serialization when one of its fields is censored). The object given is never changed: what
 * holds a secret is copied; what does not is returned as it is, so a line without secrets costs
 * a walk over its keys and nothing else.
 *
 * pino's own `redact` option did this with paths ('*.*.token' and so on, 160 of them): about
 * 110 µs per line and 50 µs per child logger, measured, which was most of the CPU a deployment
 * costs at the default level (a line per finished deployment). This walk costs about 1 µs.
 */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object' || depth > REDACT_DEPTH) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = redactSecrets(value[i], depth + 1);
      if (v !== value[i]) (out ??= value.slice())[i] = v;
    }
    return out ?? value;
  }
  if (value instanceof Error) {
    // Its own fields, walked like a plain object's; a copy (same kind of error, same message and
    // stack) when one is censored, for pino's error serializer to write as it would the original.
    const fields = redactFields(value as unknown as Record<string, unknown>, depth);
    if (fields === (value as unknown)) return value;
    return Object.assign(Object.create(Object.getPrototypeOf(value)) as Error, { message: value.message, stack: value.stack }, fields);
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  return redactFields(value as Record<string, unknown>, depth);
}

/** redactSecrets over an object's own fields: the object itself, or a plain copy with the censored ones. */
function redactFields(o: Record<string, unknown>, depth: number): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(o)) {
    const v = o[key];
    const nv = SECRET_KEY_SET.has(key.toLowerCase()) ? (v === undefined ? v : CENSOR) : redactSecrets(v, depth + 1);
    if (nv !== v) (out ??= { ...o })[key] = nv;
  }
  return out ?? o;
}

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
    // Secrets are censored in every line's fields (here) and every child logger's bindings (below).
    formatters: { log: (o) => redactSecrets(o) as Record<string, unknown> },
    serializers,
  };
  const logger = format === 'pretty' ? pino(options, prettyStream(destination)) : pino(options, destination);
  // pino applies no formatter to a child's bindings: every child (children inherit this method
  // from the root) gets them redacted before pino serializes them, once per child.
  const child = logger.child as unknown as (this: unknown, bindings: pino.Bindings, opts?: pino.ChildLoggerOptions) => Logger;
  logger.child = function (this: unknown, bindings: pino.Bindings, opts?: pino.ChildLoggerOptions) {
    return child.call(this, redactSecrets(bindings) as pino.Bindings, opts);
  } as unknown as typeof logger.child;
  return logger;
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
