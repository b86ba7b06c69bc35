/**
 * The one error handler: typed errors become `{error: {code, message, field?}}` with their 4xx
 * status; validation errors name the field; anything unexpected is a 500 with no details (the
 * log has them). A client can never provoke a stack trace in a response.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { RateLimitedError, ShipclockError } from '../core/errors.ts';

function fieldOf(err: FastifyError): string | undefined {
  const v = err.validation?.[0];
  if (!v) return undefined;
  const params = v.params as Record<string, unknown>;
  const path = String(v.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  const extra = (params.missingProperty ?? params.additionalProperty ?? (v.keyword === 'discriminator' ? params.tag : undefined)) as string | undefined;
  return [path, extra].filter(Boolean).join('.') || undefined;
}

function validationMessage(err: FastifyError, field: string | undefined): string {
  const v = err.validation![0];
  const params = v.params as Record<string, unknown>;
  if (v.keyword === 'required') return `${field} is required`;
  if (v.keyword === 'additionalProperties') return `${field} is not a known field`;
  if (v.keyword === 'discriminator') return `${field} must be one of the known types`;
  if (v.keyword === 'enum' || v.keyword === 'const') return `${field} ${v.message}`;
  if (v.keyword === 'anyOf' && params) return `${field ?? 'body'} has an invalid value`;
  return `${field ?? err.validationContext ?? 'request'} ${v.message ?? 'is invalid'}`;
}

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof ShipclockError) {
      if (err instanceof RateLimitedError) reply.header('retry-after', String(err.retryAfterSeconds));
      return reply.status(err.status).send({ error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}), ...err.extra } });
    }
    if (err.validation) {
      const field = fieldOf(err);
      return reply.status(400).send({ error: { code: 'invalid_request', message: validationMessage(err, field), ...(field ? { field } : {}) } });
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.status(413).send({ error: { code: 'body_too_large', message: 'the request body is larger than 1 MiB' } });
    }
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.status(415).send({ error: { code: 'unsupported_media_type', message: 'send the body as application/json' } });
    }
    if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      return reply.status(400).send({ error: { code: 'invalid_json', message: 'the body is empty; send a JSON object' } });
    }
    if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      return reply.status(400).send({ error: { code: 'invalid_json', message: 'the body is not valid JSON' } });
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return reply.status(status).send({ error: { code: 'bad_request', message: err.message } });
    }
    request.log.error({ err }, 'internal error');
    return reply.status(500).send({ error: { code: 'internal', message: 'internal error; see the server log' } });
  });
}
