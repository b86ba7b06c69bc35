/**
 * A small client for the shipclock REST API (v1) with the token from the config file.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    /** The whole `error` object of the answer (a 409 frozen carries `freeze` and `next_allowed_at`). */
    readonly body?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export interface Page<T> {
  result: T[];
  next_cursor: string | null;
}

export class ApiClient {
  constructor(
    readonly url: string,
    readonly token: string | null,
  ) {}

  async request<T>(method: string, path: string, body?: unknown, query?: Record<string, string | number | undefined>): Promise<T> {
    const u = new URL(this.url + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(u, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
    } catch (err) {
      const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
      throw new Error(`cannot reach ${this.url}: ${cause}`);
    }
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: reported below if it was an error
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string; field?: string } } | undefined)?.error;
      let message = e?.message ?? `HTTP ${res.status} from ${method} ${path}`;
      if (res.status === 401 && path !== '/v1/auth/login') {
        message += this.token?.startsWith('shc_') ? ' (the API token was refused: revoked, expired or mistyped)' : ' (run "shipclock login" again)';
      }
      throw new ApiError(res.status, e?.code ?? `http_${res.status}`, message, e?.field, e as Record<string, unknown> | undefined);
    }
    return json as T;
  }

  get<T>(path: string, query?: Record<string, string | number | undefined>): Promise<T> {
    return this.request<T>('GET', path, undefined, query);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body ?? {});
  }

  /** Follows next_cursor until `max` items or the end. */
  async all<T>(path: string, query: Record<string, string | number | undefined> = {}, max = Infinity): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | undefined;
    do {
      const limit = Math.min(500, max - out.length);
      const page = await this.get<Page<T>>(path, { ...query, limit, cursor });
      out.push(...page.result);
      cursor = page.next_cursor ?? undefined;
    } while (cursor && out.length < max);
    return out.slice(0, max === Infinity ? undefined : max);
  }
}
