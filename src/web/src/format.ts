/** Display helpers for times. Zone arithmetic itself lives in src/core/time.ts. */
import type { LocalFields } from './api.ts';

/** The viewer's IANA zone, as the browser reports it. */
export function viewerZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

const pad = (n: number) => String(n).padStart(2, '0');

function hour12(h: number): string {
  return `${h % 12 === 0 ? 12 : h % 12}`;
}

/** "2027-03-14 2:30 AM" (seconds shown only when not zero). */
export function formatLocal(l: LocalFields): string {
  const sec = l.second ? `:${pad(l.second)}` : '';
  return `${l.year}-${pad(l.month)}-${pad(l.day)} ${hour12(l.hour)}:${pad(l.minute)}${sec} ${l.hour < 12 ? 'AM' : 'PM'}`;
}

/** An instant shown in `zone` (default the viewer's), e.g. "2027-03-14 7:30 AM". */
export function formatInstant(epochMs: number | string, zone: string = viewerZone(), withSeconds = false): string {
  const d = typeof epochMs === 'string' ? new Date(epochMs) : new Date(epochMs);
  if (Number.isNaN(d.getTime())) return String(epochMs);
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: 'numeric', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
    })
      .formatToParts(d)
      .map((p) => [p.type, p.value]),
  ) as Record<string, string>;
  return formatLocal({
    year: Number(parts.year), month: Number(parts.month), day: Number(parts.day),
    hour: Number(parts.hour) % 24, minute: Number(parts.minute), second: withSeconds ? Number(parts.second) : 0,
  });
}

/** "2027-03-14T07:30:00Z" style UTC line for an instant. */
export function formatUtc(epochMs: number): string {
  return new Date(epochMs).toISOString().replace('.000Z', 'Z');
}

/** "15 minutes", "1 hour 30 minutes", "45 seconds". */
export function formatDuration(seconds: number): string {
  if (seconds % 3600 === 0 && seconds >= 3600) return `${seconds / 3600} hour${seconds === 3600 ? '' : 's'}`;
  if (seconds % 60 === 0 && seconds >= 60) return `${seconds / 60} minute${seconds === 60 ? '' : 's'}`;
  return `${seconds} second${seconds === 1 ? '' : 's'}`;
}
