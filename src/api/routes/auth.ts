import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { ErrorBody } from '../schemas.ts';

export default async function (fastify: FastifyInstance, ctx: ApiContext) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.post('/v1/auth/login', {
    schema: {
      tags: ['auth'],
      summary: 'Exchange email and password for a bearer token',
      security: [],
      body: Type.Object({ email: Type.String({ minLength: 1, maxLength: 320 }), password: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ access_token: Type.String(), token_type: Type.Literal('Bearer'), expires_in: Type.Integer() }), 401: ErrorBody },
    },
  }, async (req) => ctx.auth.login(req.body.email, req.body.password));

  app.get('/v1/me', {
    schema: {
      tags: ['auth'],
      summary: 'Who the token belongs to',
      response: {
        200: Type.Object({
          id: Type.String(), email: Type.String(), team: Type.Object({ id: Type.String(), name: Type.String() }),
          role: Type.Union([Type.Literal('owner'), Type.Literal('deployer'), Type.Literal('viewer')]), admin: Type.Boolean(),
        }),
      },
    },
  }, async (req) => {
    const u = req.user;
    return { id: u.id, email: u.email, team: { id: u.team_id, name: u.team_name }, role: u.role, admin: u.admin };
  });
}
