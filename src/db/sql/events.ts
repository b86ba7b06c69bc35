import type { Queryable } from '../pool.ts';

/**
 * Channel on which every committed state change is announced. A payload is a JSON array of
 * events `{id, team_id, app_id, state, at, error}`: one NOTIFY carries a batch's events, in chunks
 * under PostgreSQL's 8,000-byte payload limit (readEventsPayload also takes a lone object, the
 * shape before batching, so processes of both versions can run side by side during an upgrade).
 */
export const EVENTS_CHANNEL = 'shipclock_events';
/** Channel announcing that something may have become due sooner: payload is the instant (ISO) or empty. */
export const DUE_CHANNEL = 'shipclock_due';

/**
 * How far ahead an instant must be for its "became due" NOTIFY to be left out. Every scheduler
 * ignores a DUE_CHANNEL instant later than its next cycle + its prefetch (+ 50 ms), and its next
 * cycle is never more than one poll interval away; SHIPCLOCK_POLL_INTERVAL_MS is at most 60 s and
 * SHIPCLOCK_PREFETCH_MS at most 30 s (src/config.ts). So an instant more than 2 × 60 s + 30 s ahead
 * is one no scheduler would act on: its poll finds it in time, and skipping the NOTIFY changes
 * nothing but the work of the listeners. Keep this at least 2 × the maximum poll interval + the
 * maximum prefetch if those bounds change.
 */
export const DUE_NOTIFY_HORIZON_SECONDS = 2 * 60 + 30;

/** One event as announced on EVENTS_CHANNEL (and, without team_id, sent to the event streams). */
export interface DeploymentEvent {
  id: string;
  team_id: string;
  app_id: string;
  state: string;
  at: string;
  /** The deployment's error, cut to EVENT_ERROR_CHARS (the API has all of it). */
  error: string | null;
}

/**
 * How much of a deployment's error an event carries. It bounds one event's payload (below 6,300
 * bytes even if every character were escaped), so any event fits in a NOTIFY.
 */
export const EVENT_ERROR_CHARS = 1000;
/** Events up to this size (bytes) share a NOTIFY; a larger one (a long error) goes alone. */
const SHARED_EVENT_MAX_BYTES = 1500;
/** A NOTIFY's events start within this many bytes of its payload's start: with the last event, under 8,000. */
const NOTIFY_CHUNK_BYTES = 6000;

/**
 * The events-channel payload of one timeline row `e` (deployment_events) of deployment `d`, as
 * an object (text); a NOTIFY sends an array of these. Shared by every statement that announces an
 * event.
 */
export function eventPayloadSql(e: string, d: string): string {
  return `json_build_object('id', ${e}.deployment_id, 'team_id', ${e}.team_id, 'app_id', ${d}.app_id,
              'state', ${e}.state, 'at', ${e}.at, 'error', left(${d}.error, ${EVENT_ERROR_CHARS}))::text`;
}

/** The events of one EVENTS_CHANNEL payload (an array, or a lone event); none when it is not one. */
export function readEventsPayload(payload: string): DeploymentEvent[] {
  let v: unknown;
  try {
    v = JSON.parse(payload);
  } catch {
    return [];
  }
  if (Array.isArray(v)) return v as DeploymentEvent[];
  return v && typeof v === 'object' ? [v as DeploymentEvent] : [];
}

/**
 * Appends timeline events for deployments and announces them, in the caller's transaction (so a
 * listener never hears of a change that was rolled back). One statement, and one NOTIFY per
 * chunk of events (about 30 events each), not one per event: a burst of 10,000 deployments
 * ending is some 350 notifications for every listening process to parse, not 10,000.
 */
export async function insertEvents(db: Queryable, rows: Array<{ id: string; state: string; message: string | null }>): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `WITH ins AS (
       INSERT INTO deployment_events (deployment_id, team_id, state, message)
       SELECT d.id, d.team_id, x.state, x.message
         FROM unnest($1::uuid[], $2::text[], $3::text[]) WITH ORDINALITY AS x(id, state, message, i)
         JOIN deployments d ON d.id = x.id
        ORDER BY x.i
       RETURNING id, deployment_id, team_id, state, at
     ), item AS (
       SELECT ins.id AS n, ${eventPayloadSql('ins', 'd')} AS item FROM ins JOIN deployments d ON d.id = ins.deployment_id
     ), sized AS (
       SELECT n, item, octet_length(item) <= ${SHARED_EVENT_MAX_BYTES} AS shared,
              CASE WHEN octet_length(item) <= ${SHARED_EVENT_MAX_BYTES} THEN octet_length(item) + 1 ELSE 0 END AS len
         FROM item
     ), runs AS (
       -- A large event goes alone and starts a new run of shared ones, so the order holds.
       SELECT *, count(*) FILTER (WHERE NOT shared) OVER (ORDER BY n) AS run FROM sized
     ), placed AS (
       -- Each shared event's offset in its run; it goes in the chunk its offset falls in, so a
       -- chunk holds < NOTIFY_CHUNK_BYTES + SHARED_EVENT_MAX_BYTES + 2 bytes.
       SELECT n, item, run, CASE WHEN shared THEN (sum(len) OVER (PARTITION BY run ORDER BY n) - len) / ${NOTIFY_CHUNK_BYTES} ELSE -1 END AS chunk
         FROM runs
     )
     SELECT pg_notify('${EVENTS_CHANNEL}', payload)
       FROM (SELECT '[' || string_agg(item, ',' ORDER BY n) || ']' AS payload FROM placed GROUP BY run, chunk ORDER BY min(n)) chunks`,
    [rows.map((r) => r.id), rows.map((r) => r.state), rows.map((r) => r.message)],
  );
}

/**
 * Announces events already committed (payloads as eventPayloadSql makes them) on EVENTS_CHANNEL:
 * one NOTIFY per chunk, the chunks as insertEvents cuts them (under NOTIFY_CHUNK_BYTES +
 * SHARED_EVENT_MAX_BYTES; a larger event alone). Run outside a writing transaction, a NOTIFY
 * costs no WAL flush of its own (decision 0013).
 */
export async function announceEvents(db: Queryable, payloads: readonly string[]): Promise<void> {
  if (payloads.length === 0) return;
  const chunks: string[] = [];
  let chunk: string[] = [];
  let bytes = 0;
  const flush = () => { if (chunk.length) chunks.push(`[${chunk.join(',')}]`); chunk = []; bytes = 0; };
  for (const p of payloads) {
    const len = Buffer.byteLength(p);
    if (len > SHARED_EVENT_MAX_BYTES) {
      flush();
      chunks.push(`[${p}]`);
      continue;
    }
    if (bytes >= NOTIFY_CHUNK_BYTES) flush();
    chunk.push(p);
    bytes += len + 1;
  }
  flush();
  // Named: parsed and planned once per connection, as it runs for every few schedulings.
  await db.query({ name: 'shipclock_announce_events', text: `SELECT pg_notify('${EVENTS_CHANNEL}', p) FROM unnest($1::text[]) WITH ORDINALITY AS x(p, i) ORDER BY i`, values: [chunks] });
}

export async function notifyDue(db: Queryable, at: Date | null): Promise<void> {
  await db.query(`SELECT pg_notify('${DUE_CHANNEL}', $1)`, [at ? at.toISOString() : '']);
}

export interface EventRow {
  id: string;
  at: Date;
  state: string;
  message: string | null;
}

export async function listEvents(db: Queryable, deploymentId: string): Promise<EventRow[]> {
  const r = await db.query<EventRow>(
    'SELECT id::text, at, state, message FROM deployment_events WHERE deployment_id = $1 ORDER BY deployment_events.id',
    [deploymentId],
  );
  return r.rows;
}
