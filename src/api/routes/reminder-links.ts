/**
 * /r/<token>: reminder links, for people who are not signed in (the token is the credential).
 * GET answers a small confirmation page and changes nothing (link previews and mail scanners
 * fetch URLs); only the page's form, a POST, acts. Every answer is a plain HTML page, never
 * cached, with no referrer sent onward (the token is in the URL). The token never reaches a log:
 * request logging is off and these handlers catch everything themselves.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { LinkSigner } from '../../notifications/links.ts';
import { inspectLink, type LinkOutcome, useLink } from '../../services/reminder-links.ts';
import type { ApiContext } from '../context.ts';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function when(d: Date, zone: string): string {
  const local = new Intl.DateTimeFormat('en-GB', { timeZone: zone, dateStyle: 'medium', timeStyle: 'medium' }).format(d);
  return `${local} ${zone} (${d.toISOString().replace('.000Z', 'Z')})`;
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>${esc(title)} · shipclock</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.3rem}button{font:inherit;padding:.5rem 1.2rem;border-radius:6px;border:1px solid #1677ff;background:#1677ff;color:#fff;cursor:pointer}
.muted{color:#666;font-size:.9rem}</style></head><body>${body}</body></html>`;
}

function render(o: LinkOutcome): { status: number; html: string } {
  if (o.kind === 'refused') {
    return { status: o.status, html: page(o.title, `<h1>${esc(o.title)}</h1><p>${esc(o.message)}</p>`) };
  }
  const dep = o.dependencyApp ? ` Its dependency <b>${esc(o.dependencyApp)}</b> moves with it, keeping its lead.` : '';
  const what = o.newRunAt
    ? `the deployment of <b>${esc(o.appName)}</b> from ${esc(when(o.runAt, o.timezone))} to <b>${esc(when(o.newRunAt, o.timezone))}</b>.${dep}`
    : `the deployment of <b>${esc(o.appName)}</b> at ${esc(when(o.runAt, o.timezone))}.`;
  if (o.kind === 'done') {
    const verb = o.newRunAt ? 'Postponed' : 'Approved';
    return { status: 200, html: page('Done', `<h1>Done</h1><p>${verb} ${what}</p><p class="muted">Done as ${esc(o.actor)}, through a reminder link; it is in the audit log and the deployment's timeline.</p>`) };
  }
  return {
    status: 200,
    html: page(o.label, `<h1>${esc(o.label)}?</h1><p>This will ${o.newRunAt ? 'postpone' : 'approve'} ${what}</p>
<form method="post"><button type="submit">${esc(o.label)}</button></form>
<p class="muted">Done as ${esc(o.actor)}, who set up this reminder. Opening this page changed nothing; the button acts, once.</p>`),
  };
}

function send(reply: FastifyReply, o: LinkOutcome) {
  const { status, html } = render(o);
  return reply.status(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .header('x-robots-tag', 'noindex')
    .header('x-frame-options', 'DENY')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
    .send(html);
}

export default async function (fastify: FastifyInstance, ctx: ApiContext) {
  const signer = new LinkSigner(ctx.box);
  await fastify.register(async (r) => {
    // The confirmation form posts an empty urlencoded body; nothing in it is read.
    r.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 1024 }, (_req, _body, done) => done(null, {}));
    const opts = { schema: { hide: true } };
    r.get<{ Params: { token: string } }>('/r/:token', opts, async (req, reply) => {
      try {
        return send(reply, await inspectLink(ctx.pool, signer, req.params.token));
      } catch (err) {
        ctx.logger.error({ err: (err as Error).message }, 'reminder link page failed');
        return send(reply, { kind: 'refused', status: 500, title: 'Something went wrong', message: 'Nothing was changed. Try again in a moment.' });
      }
    });
    r.post<{ Params: { token: string } }>('/r/:token', opts, async (req, reply) => {
      try {
        const o = await useLink(ctx.pool, signer, req.params.token);
        if (o.kind === 'done') ctx.logger.info({ action: o.action, app: o.appName, actor: o.actor }, 'reminder link used');
        return send(reply, o);
      } catch (err) {
        ctx.logger.error({ err: (err as Error).message }, 'reminder link failed');
        return send(reply, { kind: 'refused', status: 500, title: 'Something went wrong', message: 'Nothing was changed. Try again in a moment.' });
      }
    });
  });
}
