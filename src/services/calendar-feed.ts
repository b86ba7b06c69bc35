/**
 * The calendar as an iCalendar (RFC 5545) feed that Google Calendar, Outlook or Apple Calendar
 * subscribe to: GET /v1/calendar.ics?token=…. A calendar application cannot sign in, so the
 * URL carries a per-user feed token, "shcal_" + 40 random base62 characters (~238 bits), shown
 * once. As for API tokens (src/services/api-tokens.ts), only its SHA-256 is stored and a token
 * is looked up by it; a user has one live token at most (a new one revokes the previous one).
 * The token reads its user's team's calendar and nothing else; revoking it, removing the user
 * or changing their password ends it.
 *
 * The feed lists what GET /v1/calendar lists for the window FEED_PAST_DAYS back to
 * FEED_FUTURE_DAYS ahead, generated with ical-generator: every time in UTC, one VEVENT per entry
 * with the entry's stable uid, freezes as TRANSP:TRANSPARENT events spanning their window.
 * ical-generator 11, not 10: 10 folds lines with a TextEncoder per character, 5.5 s of blocked
 * event loop for 4,300 events on a loaded machine; 11 takes 0.8 s (its engines field names
 * Node 22, but it runs on our Node 20 and the feed's tests run on it).
 */
import { createHash, randomInt } from 'node:crypto';
import ical, { ICalCalendarMethod, ICalEventStatus, ICalEventTransparency } from 'ical-generator';
import { recordAudit } from '../audit/record.ts';
import { ForbiddenError, NotFoundError, UnauthorizedError } from '../core/errors.ts';
import { inTransaction, type Pool } from '../db/pool.ts';
import { insertCalendarToken, liveCalendarToken, revokeCalendarToken, selectCalendarTokenForFeed } from '../db/sql/calendar.ts';
import type { TokenInfo, User } from './auth.ts';
import { type CalendarDeps, type CalendarEntry, calendarClock, calendarEntries } from './calendar.ts';

/** Feed tokens start with this, so that secret scanners and people can tell them apart from API tokens. */
export const CALENDAR_TOKEN_PREFIX = 'shcal_';
/** The feed lists entries from this many days back… */
export const FEED_PAST_DAYS = 30;
/** …to this many days ahead. */
export const FEED_FUTURE_DAYS = 180;
/** A deployment is an instant; in the feed it is an event of this many minutes. */
export const FEED_EVENT_MINUTES = 15;
/** Asked of subscribers (REFRESH-INTERVAL, X-PUBLISHED-TTL); each application decides in the end (Google: hours). */
export const FEED_REFRESH_SECONDS = 900;

const SECRET_LENGTH = 40;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const DAY_MS = 86_400_000;

export function generateCalendarToken(): string {
  let s = CALENDAR_TOKEN_PREFIX;
  for (let i = 0; i < SECRET_LENGTH; i++) s += BASE62[randomInt(62)];
  return s;
}

/** The SHA-256 under which a feed token is stored and looked up. */
export function hashCalendarToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

export function feedUrl(baseUrl: string, token: string): string {
  return `${baseUrl}/v1/calendar.ics?token=${encodeURIComponent(token)}`;
}

/**
 * A new feed token for the caller, revoking the previous one: 201 {token, url}, shown once.
 * Needs a person signed in (not an API token), as creating API tokens does.
 */
export async function createCalendarToken(pool: Pool, actor: User, via: TokenInfo, baseUrl: string) {
  if (via.kind === 'api') throw new ForbiddenError('an API token cannot create a calendar feed token; sign in as yourself');
  const token = generateCalendarToken();
  const row = await inTransaction(pool, async (c) => {
    // Serializes this user's concurrent creations (the unique index would refuse the second anyway).
    await c.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [actor.id]);
    const replaced = await revokeCalendarToken(c, actor.id);
    const r = await insertCalendarToken(c, actor.id, hashCalendarToken(token));
    await recordAudit(c, { teamId: actor.team_id, actorId: actor.id, action: 'calendar_token.create', targetId: r.id, details: { replaced } });
    return r;
  });
  return { token, url: feedUrl(baseUrl, token), created_at: row.created_at.toISOString() };
}

/** Revokes the caller's feed token: the feed answers 401 from the next request on. 404 when there is none. */
export async function revokeMyCalendarToken(pool: Pool, actor: User): Promise<void> {
  await inTransaction(pool, async (c) => {
    if (!(await revokeCalendarToken(c, actor.id))) throw new NotFoundError('calendar feed token');
    await recordAudit(c, { teamId: actor.team_id, actorId: actor.id, action: 'calendar_token.revoke', targetId: actor.id, details: {} });
  });
}

/** Whether the caller has a live feed token, and since when (never the token). */
export async function myCalendarToken(pool: Pool, actor: User) {
  const r = await liveCalendarToken(pool, actor.id);
  return { active: r !== null, created_at: r ? r.created_at.toISOString() : null };
}

const CANCELLED_STATES = new Set(['canceled', 'skipped', 'missed']);

function statusOf(e: CalendarEntry): ICalEventStatus {
  if (e.kind === 'freeze') return ICalEventStatus.CONFIRMED;
  if (e.state === 'planned') return ICalEventStatus.TENTATIVE;
  return CANCELLED_STATES.has(e.state) ? ICalEventStatus.CANCELLED : ICalEventStatus.CONFIRMED;
}

function describe(e: CalendarEntry): string {
  if (e.kind === 'freeze') {
    const apps = e.apps ? e.apps.map((a) => a.name).join(', ') : 'every app of the team';
    return [`Deploy freeze (${e.state}) for ${apps}.`, e.reason ? `Reason: ${e.reason}` : ''].filter(Boolean).join('\n');
  }
  return `${e.kind === 'occurrence' ? 'Occurrence of a recurring schedule' : 'Deployment'} of ${e.app?.name}: ${e.state}. Instant: ${e.start_utc}.`;
}

/**
 * The feed for a token: the iCalendar text, or UnauthorizedError for a token that is unknown,
 * revoked, or whose user was removed.
 */
export async function calendarFeed(pool: Pool, deps: CalendarDeps, token: string | undefined, baseUrl: string): Promise<string> {
  if (!token || !token.startsWith(CALENDAR_TOKEN_PREFIX) || token.length > 100) throw new UnauthorizedError('invalid or revoked calendar feed token');
  const who = await selectCalendarTokenForFeed(pool, hashCalendarToken(token));
  if (!who) throw new UnauthorizedError('invalid or revoked calendar feed token');
  const nowMs = await calendarClock(pool);
  const { entries } = await calendarEntries(pool, deps, who.team_id, {
    fromMs: nowMs - FEED_PAST_DAYS * DAY_MS, toMs: nowMs + FEED_FUTURE_DAYS * DAY_MS, zone: 'UTC', nowMs,
  });
  const cal = ical({
    name: `shipclock: ${who.team_name}`,
    description: `Deployments, schedule occurrences and deploy freezes of ${who.team_name}, ${FEED_PAST_DAYS} days back to ${FEED_FUTURE_DAYS} days ahead`,
    prodId: { company: 'shipclock', product: 'shipclock', language: 'EN' },
    method: ICalCalendarMethod.PUBLISH,
    ttl: FEED_REFRESH_SECONDS,
  });
  const stamp = new Date(nowMs);
  for (const e of entries) {
    const start = new Date(e.start_utc);
    cal.createEvent({
      id: `${e.uid}@shipclock`,
      stamp,
      start,
      end: e.end_utc ? new Date(e.end_utc) : new Date(start.getTime() + FEED_EVENT_MINUTES * 60_000),
      summary: e.kind === 'freeze' ? e.title : `${e.title} [${e.state}]`,
      description: describe(e),
      url: `${baseUrl}${e.link}`,
      status: statusOf(e),
      ...(e.kind === 'freeze' ? { transparency: ICalEventTransparency.TRANSPARENT } : {}),
    });
  }
  return cal.toString();
}
