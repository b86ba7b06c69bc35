import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import apps from './apps.ts';
import audit from './audit.ts';
import auth from './auth.ts';
import calendar from './calendar.ts';
import credentials from './credentials.ts';
import deployments from './deployments.ts';
import events from './events.ts';
import notifications from './notifications.ts';
import oidc from './oidc.ts';
import schedules from './schedules.ts';
import teams from './teams.ts';
import tokens from './tokens.ts';

/** Every /v1 route module; each is a plain function of (app, ctx). */
export async function registerRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  for (const routes of [auth, teams, apps, credentials, deployments, events, notifications, audit, tokens, oidc, schedules, calendar]) await routes(app, ctx);
}
