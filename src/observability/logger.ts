/**
 * Structured JSON logs (pino), one line per event, level from LOG_LEVEL. Fields that may hold
 * secrets are redacted wherever they appear in a logged object, down to four levels deep (a
 * request body's `target.secret`, a credential's `secret_access_key`, any `authorization`
 * header). Log lines about a deployment carry `deployment_id`, `app` and `team`: use
 * deploymentLogger().
 */
import pino from 'pino';

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

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'shipclock', pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    destination,
  );
}

/** A child logger whose every line names the deployment, its app and its team. */
export function deploymentLogger(
  logger: Logger,
  d: { deploymentId: string; app: string; team: string },
): Logger {
  return logger.child({ deployment_id: d.deploymentId, app: d.app, team: d.team });
}
