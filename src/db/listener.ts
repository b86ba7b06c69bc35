/**
 * One LISTEN connection per process, kept alive across database restarts: on error it
 * reconnects with backoff, LISTENs again and emits `reconnect` (listeners then re-poll, since
 * notifications sent while it was away are lost — the poll is the safety net).
 */
import { EventEmitter } from 'node:events';
import pg from 'pg';

export class Listener extends EventEmitter {
  private client: pg.Client | null = null;
  private stopped = false;
  private retryMs = 250;

  constructor(private readonly url: string, private readonly channels: string[], private readonly log: (msg: string) => void) {
    super();
    this.setMaxListeners(0);
  }

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5000 });
    client.on('notification', (n) => this.emit('notification', n.channel, n.payload ?? ''));
    client.on('error', () => this.reconnectLater(client));
    client.on('end', () => this.reconnectLater(client));
    try {
      await client.connect();
      for (const ch of this.channels) await client.query(`LISTEN ${ch}`);
      this.client = client;
      if (this.retryMs > 250) this.log('listener reconnected to the database');
      this.retryMs = 250;
      this.emit('reconnect');
    } catch {
      this.reconnectLater(client);
    }
  }

  private readonly dead = new WeakSet<pg.Client>();

  private reconnectLater(client: pg.Client): void {
    if (this.dead.has(client)) return;
    this.dead.add(client);
    this.client = null;
    client.removeAllListeners('end');
    client.removeAllListeners('error');
    client.on('error', () => {});
    client.end().catch(() => {});
    if (this.stopped) return;
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, 5000);
    setTimeout(() => void this.connect(), wait).unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => {});
  }
}
