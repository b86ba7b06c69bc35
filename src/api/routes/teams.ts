import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { addMember, createTeam, listMembers, removeMember, updateMember } from '../../services/teams.ts';
import type { ApiContext } from '../context.ts';
import { IdParams, ListQuery, Page, Uuid } from '../schemas.ts';

const Role = Type.Union([Type.Literal('owner'), Type.Literal('deployer'), Type.Literal('viewer')]);
const Member = Type.Object({ id: Type.String(), email: Type.String(), role: Role });
const MemberListed = Type.Object({
  id: Type.String(), email: Type.String(), role: Role,
  admin: Type.Boolean({ description: 'an instance admin (may create teams)' }),
  sso: Type.Boolean({ description: 'signs in through single sign-on; the identity provider sets its role at each sign-in' }),
  created_at: Type.String({ format: 'date-time' }),
});
const MemberParams = Type.Object({ id: Uuid, user_id: Uuid });

export default async function (fastify: FastifyInstance, ctx: ApiContext) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.post('/v1/teams', {
    schema: {
      tags: ['teams'], summary: 'Create a team (instance admins)',
      body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: false }),
      response: { 201: Type.Object({ id: Type.String(), name: Type.String() }) },
    },
  }, async (req, reply) => reply.status(201).send(await createTeam(ctx.pool, req.user, req.body.name)));

  app.post('/v1/teams/:id/members', {
    schema: {
      tags: ['teams'], summary: 'Add a member (instance admins, or the team\'s owner)',
      params: IdParams,
      body: Type.Object({
        email: Type.String({ format: 'email', maxLength: 320 }),
        password: Type.String({ minLength: 8, maxLength: 1024 }),
        role: Role,
      }, { additionalProperties: false }),
      response: { 201: Member },
    },
  }, async (req, reply) => reply.status(201).send(await addMember(ctx.pool, req.user, req.params.id, req.body)));

  app.get('/v1/teams/:id/members', {
    schema: {
      tags: ['teams'], summary: 'List a team\'s members (instance admins, or the team\'s owners), by email',
      params: IdParams, querystring: Type.Object(ListQuery, { additionalProperties: false }), response: { 200: Page(MemberListed) },
    },
  }, async (req) => listMembers(ctx.pool, req.user, req.params.id, req.query.limit ?? 50, req.query.cursor));

  app.patch('/v1/teams/:id/members/:user_id', {
    schema: {
      tags: ['teams'], summary: 'Change a member\'s role (instance admins, or the team\'s owners); 409 last_owner for the last owner',
      params: MemberParams,
      body: Type.Object({ role: Role }, { additionalProperties: false }),
      response: { 200: Member },
    },
  }, async (req) => {
    const m = await updateMember(ctx.pool, ctx.auth, req.user, req.params.id, req.params.user_id, req.body.role);
    return { id: m.id, email: m.email, role: m.role };
  });

  app.delete('/v1/teams/:id/members/:user_id', {
    schema: {
      tags: ['teams'],
      summary: 'Remove a member (instance admins, or the team\'s owners): its tokens stop working within a second; what it scheduled stays. 409 last_owner for the last owner',
      params: MemberParams,
      response: { 204: Type.Null() },
    },
  }, async (req, reply) => {
    await removeMember(ctx.pool, ctx.auth, req.user, req.params.id, req.params.user_id);
    return reply.status(204).send(null);
  });
}
