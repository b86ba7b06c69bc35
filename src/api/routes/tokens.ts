import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { API_TOKEN_DEFAULT_DAYS, API_TOKEN_MAX_DAYS, API_TOKENS_PER_USER, createApiToken, listMyApiTokens, revokeMyApiToken } from '../../services/api-tokens.ts';
import type { ApiContext } from '../context.ts';
import { ErrorBody, IdParams, ListQuery, Page } from '../schemas.ts';

const Role = Type.Union([Type.Literal('owner'), Type.Literal('deployer'), Type.Literal('viewer')]);
const ApiToken = Type.Object({
  id: Type.String(), name: Type.String(), role: Role,
  created_at: Type.String({ format: 'date-time' }),
  expires_at: Type.String({ format: 'date-time' }),
  last_used_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'recorded at most once a minute' }),
});

export default async function (fastify: FastifyInstance, ctx: ApiContext) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.post('/v1/tokens', {
    schema: {
      tags: ['tokens'],
      summary: `Create an API token for CI (shown once, in "token"; stored hashed). Role at most yours (default yours); expires in ${API_TOKEN_DEFAULT_DAYS} days by default, ${API_TOKEN_MAX_DAYS} at most; ${API_TOKENS_PER_USER} live tokens per user. Not with an API token`,
      body: Type.Object({
        name: Type.String({ minLength: 1, maxLength: 100 }),
        role: Type.Optional(Role),
        expires_in_days: Type.Optional(Type.Integer({ minimum: 1, maximum: API_TOKEN_MAX_DAYS })),
      }, { additionalProperties: false }),
      response: { 201: Type.Composite([ApiToken, Type.Object({ token: Type.String({ description: '"shc_" + 40 characters; send as Authorization: Bearer; never shown again' }) })]), 403: ErrorBody, 409: ErrorBody, 422: ErrorBody },
    },
  }, async (req, reply) => reply.status(201).send(await createApiToken(ctx.pool, req.user, req.authToken, req.body)));

  app.get('/v1/tokens', {
    schema: { tags: ['tokens'], summary: 'Your API tokens not revoked, oldest first (never their secret)', querystring: Type.Object(ListQuery, { additionalProperties: false }), response: { 200: Page(ApiToken) } },
  }, async (req) => listMyApiTokens(ctx.pool, req.user, req.query.limit ?? 50, req.query.cursor));

  app.delete('/v1/tokens/:id', {
    schema: { tags: ['tokens'], summary: 'Revoke one of your API tokens: refused from now on (by every process within a second)', params: IdParams, response: { 204: Type.Null() } },
  }, async (req, reply) => {
    await revokeMyApiToken(ctx.pool, ctx.auth, req.user, req.params.id);
    return reply.status(204).send(null);
  });
}
