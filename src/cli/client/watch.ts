/**
 * `shipclock watch ID`: follows one deployment over the server-sent events of GET /v1/events
 * until it reaches a final state. The stream is the fast path; a GET after every (re)connect
 * closes the gap between reading the state and subscribing, and a slow periodic GET covers a
 * stream that silently stalls behind a proxy.
 */
import { EventSourceParserStream, type EventSourceMessage } from 'eventsource-parser/stream';
import { isFinal, type DeploymentState } from '../../core/state.ts';
import { ApiError, type ApiClient } from './http.ts';
import { appLabel, type DeploymentView } from './format.ts';

export interface WatchOptions {
  out: (line: string) => void;
  /** Safety-net poll. Default 30 s. */
  pollMs?: number;
}

/** Pulls {id, state, error} of a deployment out of an event, whatever envelope it comes in. */
export function deploymentOfEvent(data: unknown): { id: string; state: string; error?: string | null; dependencyOf?: string } | null {
  if (!data || typeof data !== 'object') return null;
  const o = data as Record<string, unknown>;
  for (const inner of [o.result, o.deployment, o.data]) {
    if (inner && typeof inner === 'object') {
      const found = deploymentOfEvent(inner);
      if (found) return found;
    }
  }
  const id = o.deployment_id ?? o.id;
  const state = o.state ?? o.to;
  if (typeof id !== 'string' || typeof state !== 'string') return null;
  return { id, state, error: (o.error as string | null | undefined) ?? (o.message as string | null | undefined) };
}

/** Resolves to the exit code: 0 succeeded, 1 any other final state. */
export async function watchDeployment(client: ApiClient, id: string, names: Map<string, string>, opts: WatchOptions): Promise<number> {
  const pollMs = opts.pollMs ?? 30_000;
  const stamp = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  let last: string | null = null;
  let depId: string | null = null;
  let depLast: string | null = null;
  let label = id;

  const see = (state: string, error?: string | null): number | null => {
    if (state !== last) {
      opts.out(`${stamp()}  ${label}  ${last ? `${last} -> ` : ''}${state}${error && state !== 'succeeded' ? `: ${error}` : ''}`);
      last = state;
    }
    if (isFinal(state as DeploymentState)) return state === 'succeeded' ? 0 : 1;
    return null;
  };
  const seeDependency = (state: string) => {
    if (state !== depLast) {
      opts.out(`${stamp()}  dependency ${depId}  ${depLast ? `${depLast} -> ` : ''}${state}`);
      depLast = state;
    }
  };

  const fetchNow = async (): Promise<number | null> => {
    let d: DeploymentView;
    try {
      d = (await client.get<{ result: DeploymentView }>(`/v1/scheduled_deployments/${encodeURIComponent(id)}`)).result;
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 400 || err.status === 422)) {
        throw new ApiError(err.status, 'not_found', `unknown deployment '${id}'`);
      }
      throw err;
    }
    label = `${appLabel(d, names)} ${d.id}`;
    if (d.dependency) {
      depId = d.dependency.id;
      if (!isFinal(d.state as DeploymentState)) seeDependency(d.dependency.state);
    }
    return see(d.state, d.error);
  };

  const first = await fetchNow();
  if (first !== null) return first;

  const done = new AbortController();
  let result: number | null = null;
  const finish = (code: number | null) => {
    if (code !== null && result === null) {
      result = code;
      done.abort();
    }
  };

  const poller = setInterval(() => {
    fetchNow().then(finish, () => {});
  }, pollMs);
  try {
    let backoff = 500;
    while (result === null) {
      try {
        const res = await fetch(`${client.url}/v1/events`, {
          headers: { authorization: `Bearer ${client.token}`, accept: 'text/event-stream' },
          signal: done.signal,
        });
        if (res.status === 401 || res.status === 403) {
          throw new ApiError(res.status, 'unauthorized', `the server refused the event stream (HTTP ${res.status}): run "shipclock login" again`);
        }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        backoff = 500;
        // Subscribed: anything that happened before this point is in the deployment's state.
        finish(await fetchNow());
        const reader = res.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
        while (result === null) {
          const { value, done: ended } = await reader.read();
          if (ended) break;
          finish(onMessage(value));
        }
        await reader.cancel().catch(() => {});
      } catch (err) {
        if (result !== null) break;
        if (err instanceof ApiError) throw err;
        // Connection lost or refused: reconnect with backoff; the GET after it catches up.
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 10_000);
        finish(await fetchNow().catch(() => null));
      }
    }
  } finally {
    clearInterval(poller);
    done.abort();
  }
  return result ?? 1;

  function onMessage(msg: EventSourceMessage): number | null {
    let data: unknown;
    try {
      data = JSON.parse(msg.data);
    } catch {
      return null;
    }
    const ev = deploymentOfEvent(data);
    if (!ev) return null;
    // A rollback's progress is not a state of the deployment (it stays failed or succeeded).
    if (ev.state.startsWith('rollback_')) return null;
    if (ev.id === id) return see(ev.state, ev.error);
    if (depId && ev.id === depId) seeDependency(ev.state);
    return null;
  }
}
