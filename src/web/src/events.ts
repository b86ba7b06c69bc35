/**
 * Live deployment state changes from GET /v1/events (server-sent events). EventSource cannot
 * send headers, so the token goes in `?access_token=`. One connection is shared by every
 * component that listens; the browser reconnects by itself when it drops.
 */
import { useEffect, useRef } from 'react';
import { getToken } from './api.ts';

export interface DeploymentChange {
  id: string;
  app_id: string;
  state: string;
  at: string;
  error?: string | null;
}

type Listener = (e: DeploymentChange) => void;
const listeners = new Set<Listener>();
let source: EventSource | null = null;
let sourceToken: string | null = null;

function connect(): void {
  const token = getToken();
  if (source && sourceToken === token) return;
  source?.close();
  source = null;
  sourceToken = token;
  if (!token || typeof EventSource === 'undefined') return;
  source = new EventSource(`/v1/events?access_token=${encodeURIComponent(token)}`);
  source.addEventListener('deployment', (msg) => {
    let data: DeploymentChange;
    try {
      data = JSON.parse((msg as MessageEvent<string>).data) as DeploymentChange;
    } catch {
      return;
    }
    for (const l of listeners) l(data);
  });
}

function disconnectIfIdle(): void {
  if (listeners.size === 0 && source) {
    source.close();
    source = null;
    sourceToken = null;
  }
}

/** Calls `onChange` for every deployment state change of the team while the component is mounted. */
export function useDeploymentEvents(onChange: Listener): void {
  const ref = useRef(onChange);
  ref.current = onChange;
  useEffect(() => {
    const l: Listener = (e) => ref.current(e);
    listeners.add(l);
    connect();
    return () => {
      listeners.delete(l);
      // Let a page that mounts right after this one reuse the connection.
      setTimeout(disconnectIfIdle, 1000);
    };
  }, []);
}
