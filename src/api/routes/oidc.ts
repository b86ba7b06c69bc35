import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { NotFoundError } from '../../core/errors.ts';
import type { OidcService } from '../../services/oidc.ts';
import type { ApiContext } from '../context.ts';
import { ErrorBody } from '../schemas.ts';

/** Single sign-on (src/services/oidc.ts). Without SHIPCLOCK_OIDC_ISSUER these answer 404. */
export default async function (fastify: FastifyInstance, ctx: ApiContext) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const sso = (): OidcService => {
    if (!ctx.oidc) throw new NotFoundError('single sign-on (SHIPCLOCK_OIDC_ISSUER is not set)');
    return ctx.oidc;
  };

  app.get('/v1/auth/oidc/login', {
    schema: { tags: ['auth'], summary: 'Start single sign-on: redirects to the identity provider', security: [], response: { 302: Type.Null(), 404: ErrorBody } },
  }, async (_req, reply) => {
    const r = await sso().start();
    return reply.header('set-cookie', r.cookie).header('cache-control', 'no-store').redirect(r.location, 302);
  });

  app.get('/v1/auth/oidc/callback', {
    schema: {
      tags: ['auth'], summary: 'Where the identity provider sends the browser back; redirects to /login#sso_code=… or /login#sso_error=…', security: [],
      response: { 302: Type.Null(), 404: ErrorBody },
    },
  }, async (req, reply) => {
    const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
    const r = await sso().callback(query, req.headers.cookie);
    return reply.header('set-cookie', r.cookie).header('cache-control', 'no-store').redirect(r.location, 302);
  });

  app.post('/v1/auth/oidc/exchange', {
    schema: {
      tags: ['auth'], summary: 'Exchange the one-time code from the single sign-on redirect (once, within a minute) for a bearer token', security: [],
      body: Type.Object({ code: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ access_token: Type.String(), token_type: Type.Literal('Bearer'), expires_in: Type.Integer() }), 401: ErrorBody, 404: ErrorBody },
    },
  }, async (req) => sso().exchange(req.body.code));
}
