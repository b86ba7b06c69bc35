/**
 * Fans committed state changes (NOTIFY on the events channel, from any process) out to the
 * server-sent-event streams of this process, each seeing its own team only. A notification
 * carries a batch of events (insertEvents sends one per chunk, not one per event); each stream
 * still gets one message per deployment change.
 */
import type { Listener } from '../db/listener.ts';
import { type DeploymentEvent, EVENTS_CHANNEL, readEventsPayload } from '../db/sql/events.ts';

export type { DeploymentEvent } from '../db/sql/events.ts';

type Subscriber = (e: Omit<DeploymentEvent, 'team_id'>) => void;

export class EventsHub {
  private readonly byTeam = new Map<string, Set<Subscriber>>();

  constructor(listener: Listener) {
    listener.on('notification', (channel: string, payload: string) => {
      // Nobody is watching: the payload is not even parsed.
      if (channel !== EVENTS_CHANNEL || !this.byTeam.size) return;
      for (const e of readEventsPayload(payload)) {
        const subs = this.byTeam.get(e.team_id);
        if (!subs) continue;
        const { team_id: _t, ...out } = e;
        for (const s of subs) s(out);
      }
    });
  }

  subscribe(teamId: string, fn: Subscriber): () => void {
    let set = this.byTeam.get(teamId);
    if (!set) this.byTeam.set(teamId, (set = new Set()));
    set.add(fn);
    return () => {
      set!.delete(fn);
      if (!set!.size) this.byTeam.delete(teamId);
    };
  }

  get subscribers(): number {
    let n = 0;
    for (const s of this.byTeam.values()) n += s.size;
    return n;
  }
}
