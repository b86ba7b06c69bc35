import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { approveDeployment, rejectDeployment } from '../../services/approvals.ts';
import { cancel, getOne, list, loadOut, release, reschedule, rollbackByHand, schedule } from '../../services/deployments.ts';
import { requireRole } from '../auth.ts';
import type { ApiContext } from '../context.ts';
import {
  ApproveBody, ErrorBody, IdParams, ListDeploymentsQuery, Page, RejectBody, RescheduledDeployment, ScheduleCreate, ScheduledDeployment,
  ScheduledDeploymentDetail, ScheduleUpdate, Wrapped,
} from '../schemas.ts';

const errors = { 400: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody };
const decisionErrors = { 400: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody };

export default async function (fastify: FastifyInstance, ctx: ApiContext) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.post('/v1/scheduled_deployments', {
    schema: {
      tags: ['scheduled deployments'],
      summary: 'Schedule a deployment at a wall-clock time in an IANA zone, optionally after a dependency (deployers)',
      description: 'A local time skipped by a daylight-saving change answers 422 nonexistent_local_time; one that occurs twice is resolved by `disambiguation`. With `dependency`, that app is scheduled `dependency_lead_seconds` earlier and must succeed first.',
      body: ScheduleCreate,
      response: { 201: Wrapped(ScheduledDeployment), ...errors },
    },
  }, async (req, reply) => reply.status(201).send({ result: await schedule(ctx.pool, requireRole(req, 'deployer'), req.body) }));

  app.get('/v1/scheduled_deployments', {
    schema: { tags: ['scheduled deployments'], summary: 'List by instant, with filters', querystring: ListDeploymentsQuery, response: { 200: Page(ScheduledDeployment) } },
  }, async (req) => list(ctx.pool, req.user, req.query));

  app.get('/v1/scheduled_deployments/:id', {
    schema: { tags: ['scheduled deployments'], summary: 'One deployment with its event timeline and log', params: IdParams, response: { 200: Wrapped(ScheduledDeploymentDetail), 404: ErrorBody } },
  }, async (req) => ({ result: await getOne(ctx.pool, req.user, req.params.id) }));

  app.patch('/v1/scheduled_deployments/:id', {
    schema: {
      tags: ['scheduled deployments'], summary: 'Reschedule (deployers); a pending dependency moves with it, keeping its lead',
      description: 'Moving a deployment by more than its expiry voids the approvals given (`result.approval_reset: true`): they must be given again.',
      params: IdParams, body: ScheduleUpdate, response: { 200: Wrapped(RescheduledDeployment), ...errors },
    },
  }, async (req) => ({ result: await reschedule(ctx.pool, requireRole(req, 'deployer'), req.params.id, req.body) }));

  app.post('/v1/scheduled_deployments/:id/cancel', {
    schema: {
      tags: ['scheduled deployments'], summary: 'Cancel (deployers); its pending dependency is canceled too. A running rollout only if the provider can recall it',
      params: IdParams, response: { 200: Wrapped(ScheduledDeployment), ...errors },
    },
  }, async (req) => ({ result: await cancel(ctx.pool, requireRole(req, 'deployer'), req.params.id, ctx.resolveTarget) }));

  app.post('/v1/scheduled_deployments/:id/release', {
    schema: {
      tags: ['scheduled deployments'],
      summary: 'Release a held deployment (owners): scheduled again at its instant, despite the freeze; audited',
      params: IdParams,
      body: Type.Object({ reason: Type.String({ minLength: 1, maxLength: 1000, description: 'why it goes out despite the freeze' }) }, { additionalProperties: false }),
      response: { 200: Wrapped(ScheduledDeployment), ...errors },
    },
  }, async (req) => ({ result: await release(ctx.pool, requireRole(req, 'owner'), req.params.id, req.body.reason) }));

  app.post('/v1/scheduled_deployments/:id/rollback', {
    schema: {
      tags: ['scheduled deployments'],
      summary: 'Roll a finished deployment back (deployers): restore what ran before it, followed to its end',
      description: 'Answers 202 with the deployment, its `rollback` pending; the scheduler makes the rollback and follows it (see `rollback.state`). ' +
        '409 not_finished / rollback_running / app_busy / nothing_changed; 422 rollback_not_supported when the target cannot be rolled back (command).',
      params: IdParams, response: { 202: Wrapped(ScheduledDeployment), ...errors },
    },
  }, async (req, reply) => reply.status(202).send({ result: await rollbackByHand(ctx.pool, requireRole(req, 'deployer'), req.params.id) }));

  app.post('/v1/scheduled_deployments/:id/approve', {
    schema: {
      tags: ['scheduled deployments'],
      summary: 'Approve a deployment that needs approval (a role in the app\'s approval.from_roles; not its creator)',
      description: '403 `self_approval` for the user who scheduled it, 403 for a viewer or a role the policy leaves out; 409 `already_decided` on a second decision by the same user, `rejected`, `already_final`, `approval_not_required`.',
      params: IdParams, body: ApproveBody, response: { 200: Wrapped(ScheduledDeployment), ...decisionErrors },
    },
  }, async (req) => {
    await approveDeployment(ctx.pool, { deploymentId: req.params.id, teamId: req.user.team_id, userId: req.user.id, comment: req.body?.comment, role: req.user.role });
    return { result: await loadOut(ctx.pool, req.user.team_id, req.params.id) };
  });

  app.post('/v1/scheduled_deployments/:id/reject', {
    schema: {
      tags: ['scheduled deployments'],
      summary: 'Reject a deployment that needs approval, saying why (`comment` required): at its instant it ends skipped',
      params: IdParams, body: RejectBody, response: { 200: Wrapped(ScheduledDeployment), ...decisionErrors },
    },
  }, async (req) => {
    await rejectDeployment(ctx.pool, { deploymentId: req.params.id, teamId: req.user.team_id, userId: req.user.id, comment: req.body?.comment, role: req.user.role });
    return { result: await loadOut(ctx.pool, req.user.team_id, req.params.id) };
  });
}
