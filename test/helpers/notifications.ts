/** A LISTENing connection for tests that check what was announced (NOTIFY), and when. */
import pg from 'pg';

export interface Heard {
  channel: string;
  payload: string;
}

export interface Notifications {
  /** What was heard since the last call, once the server has sent what it had and `settleMs` passed. */
  drain(settleMs?: number): Promise<Heard[]>;
  /** The same, only the payloads heard on `channel`. */
  payloads(channel: string, settleMs?: number): Promise<string[]>;
  end(): Promise<void>;
}

export async function listenTo(url: string, channels: string[]): Promise<Notifications> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const heard: Heard[] = [];
  client.on('notification', (n) => heard.push({ channel: n.channel, payload: n.payload ?? '' }));
  for (const c of channels) await client.query(`LISTEN ${c}`);
  const drain = async (settleMs = 50) => {
    // Notifications are delivered after commit, asynchronously: a round trip, then a moment.
    await client.query('SELECT 1');
    await new Promise((r) => setTimeout(r, settleMs));
    return heard.splice(0);
  };
  return {
    drain,
    payloads: async (channel, settleMs) => (await drain(settleMs)).filter((h) => h.channel === channel).map((h) => h.payload),
    end: () => client.end(),
  };
}
