/**
 * Fans committed state changes (NOTIFY on the events channel, from any process) out to the
 * server-sent-event streams of this process, each seeing its own team only.
 */
import type { Listener } from '../db/listener.ts';
import { EVENTS_CHANNEL } from '../db/sql/events.ts';

export interface DeploymentEvent {
  id: string;
  team_id: string;
  app_id: string;
  state: string;
  at: string;
  error: string | null;
}

type Subscriber = (e: Omit<DeploymentEvent, 'team_id'>) => void;

export class EventsHub {
  private readonly byTeam = new Map<string, Set<Subscriber>>();

  constructor(listener: Listener) {
    listener.on('notification', (channel: string, payload: string) => {
      if (channel !== EVENTS_CHANNEL) return;
      let e: DeploymentEvent;
      try {
        e = JSON.parse(payload);
      } catch {
        return;
      }
      const subs = this.byTeam.get(e.team_id);
      if (!subs) return;
      const { team_id: _t, ...out } = e;
      for (const s of subs) s(out);
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
