import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { addMember, createTeam, listMembers } from '../../services/teams.ts';
import type { ApiContext } from '../context.ts';
import { IdParams } from '../schemas.ts';

const Role = Type.Union([Type.Literal('owner'), Type.Literal('deployer'), Type.Literal('viewer')]);
const Member = Type.Object({ id: Type.String(), email: Type.String(), role: Role });

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
    schema: { tags: ['teams'], summary: 'List a team\'s members', params: IdParams, response: { 200: Type.Object({ result: Type.Array(Member), next_cursor: Type.Null() }) } },
  }, async (req) => ({ result: await listMembers(ctx.pool, req.user, req.params.id), next_cursor: null }));
}
