/**
 * The HTTP server: Fastify with TypeBox schemas. Every /v1 route except login needs a bearer
 * token; bodies are limited to 1 MiB and validated strictly (no coercion, no unknown fields).
 */
import fs from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv } from 'ajv';
import addFormatsImport from 'ajv-formats';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Bindings, ChildLoggerOptions } from 'fastify/types/logger.js';
import { ShipclockError } from '../core/errors.ts';
import { registry } from '../observability/metrics.ts';
import { WEB_DIR } from '../paths.ts';
import { authenticate } from './auth.ts';
import type { ApiContext } from './context.ts';
import { installErrorHandler } from './errors.ts';
import { registerRoutes } from './routes/index.ts';
import reminderLinks from './routes/reminder-links.ts';

export const BODY_LIMIT_BYTES = 1024 * 1024;

/** /v1 routes that need no bearer token: signing in, and the calendar feed (its URL carries its own token). */
const PUBLIC_ROUTES = new Set(['/v1/auth/login', '/v1/auth/methods', '/v1/auth/oidc/login', '/v1/auth/oidc/callback', '/v1/auth/oidc/exchange', '/v1/calendar.ics']);
/** What a user signed in with the printed one-time password may use before changing it. */
const BEFORE_PASSWORD_CHANGE = new Set(['/v1/me', '/v1/me/password']);

const addFormats = addFormatsImport as unknown as (ajv: Ajv) => Ajv;

function makeAjv(coerce: boolean): Ajv {
  const ajv = new Ajv({
    coerceTypes: coerce ? 'array' : false,
    useDefaults: true,
    removeAdditional: false,
    allErrors: false,
    discriminator: true,
    strict: false,
  });
  addFormats(ajv);
  return ajv;
}

export type Api = FastifyInstance;

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * A request's logger that becomes a pino child (with the `reqId` binding) on the first line the
 * request writes. Fastify makes a child per request, and with redaction on, pino passes each
 * child's bindings through the redactor: ~2.5 % of the API's CPU, for requests that nearly all
 * log nothing (request logging is off; errors and Fastify's warnings still get their `reqId`,
 * and the same redaction, from the real child).
 */
class RequestLogger {
  private real: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly opts: ChildLoggerOptions,
  ) {}

  private realChild(): FastifyBaseLogger {
    return (this.real ??= this.parent.child(this.bindings, this.opts));
  }

  /** Builds the child only for a line that would be written. */
  private write(level: Level, args: unknown[]): void {
    if (!this.real && this.opts.level === undefined) {
      const parent = this.parent as FastifyBaseLogger & { isLevelEnabled?(l: string): boolean };
      if (parent.isLevelEnabled && !parent.isLevelEnabled(level)) return;
    }
    const log = this.realChild();
    (log[level] as (...a: unknown[]) => void).apply(log, args);
  }

  get level(): string {
    return this.real?.level ?? this.opts.level ?? this.parent.level;
  }

  set level(level: string) {
    this.realChild().level = level;
  }

  fatal(...args: unknown[]) { this.write('fatal', args); }
  error(...args: unknown[]) { this.write('error', args); }
  warn(...args: unknown[]) { this.write('warn', args); }
  info(...args: unknown[]) { this.write('info', args); }
  debug(...args: unknown[]) { this.write('debug', args); }
  trace(...args: unknown[]) { this.write('trace', args); }
  silent() {}

  child(bindings: Bindings, opts?: ChildLoggerOptions): FastifyBaseLogger {
    return this.realChild().child(bindings, opts);
  }
}

export async function buildApi(ctx: ApiContext): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: ctx.logger.child({ component: 'http' }) as FastifyBaseLogger,
    // Per-request lines would be thousands a second at a round-hour instant; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: (logger, bindings, opts) => new RequestLogger(logger, bindings, opts) as unknown as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    trustProxy: true,
    // A reminder link's token is one path segment (/r/<token>) of about 300 characters.
    routerOptions: { maxParamLength: 1024 },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Bodies are strict; query strings and path params are strings on the wire and get coerced.
  const strict = makeAjv(false);
  const coercing = makeAjv(true);
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema));
  installErrorHandler(app);

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    try {
      await ctx.pool.query({ text: 'SELECT 1', query_timeout: 2000 } as never);
      return { status: 'ready' };
    } catch {
      return reply.status(503).send({ error: { code: 'database_unreachable', message: 'the database does not answer' } });
    }
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });

  if (ctx.role === 'worker') {
    app.setNotFoundHandler((_request, reply) => {
      reply.status(404).send({ error: { code: 'not_found', message: `a worker serves only /healthz, /readyz and /metrics` } });
    });
    return app;
  }

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'shipclock API', version: '1.0.0', description: 'Schedule deployments in your timezone; shipclock fires each exactly once at its instant.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(async (v1) => {
    v1.addHook('onRequest', async (request) => {
      const route = request.routeOptions.url ?? '';
      if (PUBLIC_ROUTES.has(route)) return;
      await authenticate(ctx.auth, request, route === '/v1/events');
      if (request.user.password_change_required && !BEFORE_PASSWORD_CHANGE.has(route)) {
        throw new ShipclockError(403, 'password_change_required', 'you signed in with the one-time password: change it first (POST /v1/me/password)');
      }
    });
    await registerRoutes(v1 as unknown as FastifyInstance, ctx);
  });
  // Reminder links (/r/<token>): the signed token is the credential, no bearer token.
  await reminderLinks(app as unknown as FastifyInstance, ctx);

  const indexFile = path.join(WEB_DIR, 'index.html');
  if (fs.existsSync(indexFile)) {
    await app.register(fastifyStatic, { root: WEB_DIR, wildcard: false, index: ['index.html'] });
    const indexHtml = fs.readFileSync(indexFile);
    // Client-side routes (/deployments/…) get the app; unknown API paths keep their JSON 404.
    app.setNotFoundHandler((request, reply) => {
      const url = request.url.split('?')[0];
      if (request.method === 'GET' && !url.startsWith('/v1/') && !url.startsWith('/docs') && !path.extname(url)) {
        return reply.type('text/html; charset=utf-8').send(indexHtml);
      }
      return reply.status(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${url}` } });
    });
  } else {
    app.setNotFoundHandler((request, reply) => {
      reply.status(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` } });
    });
  }
  return app;
}
