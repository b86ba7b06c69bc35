/**
 * Reminder links: `${SHIPCLOCK_PUBLIC_URL}/r/<token>`. A token is `v1.<payload>.<mac>`, both
 * base64url; the payload binds the deployment, the action, the instant the reminder was about,
 * the subscription (whose owner the action is done as), an expiry and a random nonce; the MAC is
 * HMAC-SHA256 under a key derived from the server's secret key with HKDF ("shipclock reminder
 * links v1"). Single use is enforced elsewhere (table reminder_link_uses). Pure apart from the
 * random nonce: no I/O, no clock.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SecretBox } from '../secrets/box.ts';

export const LINK_ACTIONS = ['postpone_15m', 'postpone_1h', 'postpone_next_allowed', 'approve'] as const;
export type LinkAction = (typeof LINK_ACTIONS)[number];

/** What a link does, in words for the confirmation page and the messages. */
export const ACTION_LABELS: Record<LinkAction, string> = {
  postpone_15m: 'Postpone 15 minutes',
  postpone_1h: 'Postpone 1 hour',
  postpone_next_allowed: 'Postpone to the next allowed time',
  approve: 'Approve',
};

export interface LinkClaims {
  /** deployment id */
  deploymentId: string;
  subscriptionId: string;
  action: LinkAction;
  /** The deployment's instant the reminder was about (ms): a link does nothing once it moved. */
  runAtMs: number;
  /** Expiry (ms since the epoch). */
  expiresAtMs: number;
  nonce: string;
}

const INFO = 'shipclock reminder links v1';

export class LinkSigner {
  private readonly key: Buffer;

  constructor(box: SecretBox) {
    this.key = box.deriveKey(INFO);
  }

  static newNonce(): string {
    return randomBytes(16).toString('base64url');
  }

  sign(c: LinkClaims): string {
    const payload = Buffer.from(JSON.stringify({
      d: c.deploymentId, s: c.subscriptionId, a: c.action, r: c.runAtMs, e: c.expiresAtMs, n: c.nonce,
    })).toString('base64url');
    return `v1.${payload}.${this.mac(payload)}`;
  }

  /** The claims of an untampered token (expired or not: the caller decides with the database clock), else null. */
  verify(token: string): LinkClaims | null {
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== 'v1' || token.length > 1024) return null;
    const expected = Buffer.from(this.mac(parts[1]));
    const given = Buffer.from(parts[2]);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    try {
      const o = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Record<string, unknown>;
      if (typeof o.d !== 'string' || typeof o.s !== 'string' || typeof o.n !== 'string' || typeof o.r !== 'number' || typeof o.e !== 'number') return null;
      if (!(LINK_ACTIONS as readonly string[]).includes(String(o.a))) return null;
      return { deploymentId: o.d, subscriptionId: o.s, action: o.a as LinkAction, runAtMs: o.r, expiresAtMs: o.e, nonce: o.n };
    } catch {
      return null;
    }
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(`v1.${payload}`).digest('base64url');
  }
}
