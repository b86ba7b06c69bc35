import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { changePassword } from '../../services/passwords.ts';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from '../../services/password-policy.ts';
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
      response: { 200: Type.Object({ access_token: Type.String(), token_type: Type.Literal('Bearer'), expires_in: Type.Integer() }), 401: ErrorBody, 429: ErrorBody },
    },
  }, async (req) => ctx.auth.login(req.body.email, req.body.password, req.ip));

  app.get('/v1/auth/methods', {
    schema: {
      tags: ['auth'],
      summary: 'How one can sign in here: with a password, and with single sign-on when it is configured',
      security: [],
      response: { 200: Type.Object({ password: Type.Boolean(), sso: Type.Boolean() }) },
    },
  }, async () => ({ password: true, sso: ctx.oidc !== undefined }));

  app.post('/v1/me/password', {
    schema: {
      tags: ['auth'],
      summary: `Change your password (at least ${MIN_PASSWORD_LENGTH} characters, not a common one). Ends your other sessions and revokes your API tokens and calendar feed token; the token used here stays valid`,
      body: Type.Object({
        current_password: Type.String({ minLength: 1, maxLength: MAX_PASSWORD_LENGTH }),
        // Length and commonness are checked by the service: a 422 naming new_password.
        new_password: Type.String({ maxLength: MAX_PASSWORD_LENGTH }),
      }, { additionalProperties: false }),
      response: { 204: Type.Null(), 403: ErrorBody, 422: ErrorBody, 429: ErrorBody },
    },
  }, async (req, reply) => {
    await changePassword(ctx.pool, ctx.auth, req.user, req.authToken, req.body, req.ip);
    return reply.status(204).send(null);
  });

  app.get('/v1/me', {
    schema: {
      tags: ['auth'],
      summary: 'Who the token belongs to',
      response: {
        200: Type.Object({
          id: Type.String(), email: Type.String(), team: Type.Object({ id: Type.String(), name: Type.String() }),
          role: Type.Union([Type.Literal('owner'), Type.Literal('deployer'), Type.Literal('viewer')]), admin: Type.Boolean(),
          password_change_required: Type.Boolean({ description: 'signed in with the printed one-time password: every other route answers 403 password_change_required until POST /v1/me/password' }),
          sso: Type.Boolean({ description: 'signs in through single sign-on' }),
          via: Type.Union([Type.Literal('login'), Type.Literal('api_token')], { description: 'what this request authenticated with' }),
        }),
      },
    },
  }, async (req) => {
    const u = req.user;
    return {
      id: u.id, email: u.email, team: { id: u.team_id, name: u.team_name }, role: u.role, admin: u.admin,
      password_change_required: u.password_change_required === true, sso: u.sso === true, via: req.authToken.kind === 'api' ? 'api_token' as const : 'login' as const,
    };
  });
}
