/**
 * /v1/audit: who did what, when (owners), newest first.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { listAuditEntries } from '../../services/audit.ts';
import { requireRole } from '../auth.ts';
import type { ApiContext } from '../context.ts';
import { ListQuery, Page } from '../schemas.ts';

export const AuditEntry = Type.Object({
  id: Type.String(),
  at: Type.String({ format: 'date-time' }),
  actor: Type.Union([Type.Object({ id: Type.String({ format: 'uuid' }), email: Type.Union([Type.String(), Type.Null()]) }), Type.Null()], {
    description: 'the user who acted; null for the system (first-start bootstrap)',
  }),
  action: Type.String({ description: 'e.g. deployment.create, deployment.reschedule, deployment.cancel, app.update, credential.delete, member.create' }),
  target_id: Type.Union([Type.String(), Type.Null()]),
  details: Type.Record(Type.String(), Type.Unknown(), { description: 'what changed (never secret values)' }),
});

const AuditQuery = Type.Object(
  {
    ...ListQuery,
    action: Type.Optional(Type.String({ maxLength: 100, description: 'only this action' })),
    target_id: Type.Optional(Type.String({ maxLength: 100, description: 'only entries about this object' })),
  },
  { additionalProperties: false },
);

export default async function (fastify: FastifyInstance, ctx: ApiContext) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.get('/v1/audit', {
    schema: { tags: ['audit'], summary: 'The team\'s audit log, newest first (owners)', querystring: AuditQuery, response: { 200: Page(AuditEntry) } },
  }, async (req) => listAuditEntries(ctx.pool, requireRole(req, 'owner'), { ...req.query, limit: req.query.limit ?? 50 }));
}
