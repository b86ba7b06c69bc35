/**
 * One interface for every deploy target. The scheduler owns timing, retries, leases and state;
 * a provider only talks to its target. Every provider passes the shared conformance suite in
 * test/providers.conformance.test.ts against its local fake.
 *
 * A provider never throws for an outcome: it returns a StepResult. A thrown error is treated as
 * a transient failure with the error's message (redacted) and retried per the app's policy.
 */

/** What a provider is told about the deployment it runs. Carries ids and names, never secrets. */
export interface DeploymentInfo {
  id: string;
  teamId: string;
  appId: string;
  appName: string;
  /** The scheduled instant (UTC). */
  runAt: Date;
  /** 1-based attempt number of this start (retries of transient failures increase it). */
  attempt: number;
  /** When the deployment started running (first attempt), for rollout timeouts and recovery. */
  startedAt: Date;
}

/** Decrypted credential material, held in memory only for the length of one call. */
export type Credentials =
  | { provider: 'aws'; access_key_id: string; secret_access_key: string; session_token?: string }
  | { provider: 'digitalocean'; token: string }
  /** A kubeconfig document (its current context is used), or a server URL with a bearer token. */
  | { provider: 'kubernetes'; kubeconfig?: string; server?: string; token?: string; ca_certificate?: string }
  /** A GitHub token allowed to dispatch workflows; api_url for GitHub Enterprise Server. */
  | { provider: 'github'; token: string; api_url?: string };

/**
 * Provider-owned reference to what it started (ECS deployment id and task-definition ARN,
 * DigitalOcean deployment id, ...). Stored as JSON on the deployment, shown in the API/UI, and
 * handed back on every later poll, also to another process after a crash. Never holds secrets.
 */
export type ProviderRef = Record<string, string | number | boolean | null>;

export interface ProviderContext<T = Record<string, unknown>> {
  deployment: DeploymentInfo;
  /** The app's target with secrets decrypted (e.g. the webhook `secret`). */
  target: T;
  /** The credential the target names, decrypted; undefined for webhook/command. */
  credentials?: Credentials;
  /** What this provider returned earlier for this deployment (null before the first start). */
  ref: ProviderRef | null;
  /** Aborted on shutdown or when the step's own timeout passes. */
  signal: AbortSignal;
  /** Appends a line to the deployment's log (capped; secrets must not be passed here). */
  log(line: string): void;
}

export type StepResult =
  /** The deployment is done and succeeded. */
  | { kind: 'succeeded'; ref?: ProviderRef; message?: string }
  /** Done and failed for good (a 4xx, a failed rollout, a missing service): not retried. */
  | { kind: 'failed'; error: string; ref?: ProviderRef }
  /** A transient failure (network, 5xx, 429, throttling): retried per the app's retry policy. */
  | { kind: 'retry'; error: string; afterSeconds?: number; ref?: ProviderRef }
  /** Started and still rolling out: call poll() again after `afterSeconds`. */
  | { kind: 'follow'; ref: ProviderRef; afterSeconds: number; message?: string };

export interface Provider<T = Record<string, unknown>> {
  readonly type: string;
  /** Whether an in-flight rollout can be recalled; false → canceling a running deployment is 409. */
  readonly cancellable: boolean;
  /**
   * Starts the deployment. Called once per attempt. Webhooks may be repeated with the same
   * Idempotency-Key; providers with side effects must not be triggered twice for one deployment.
   */
  start(ctx: ProviderContext<T>): Promise<StepResult>;
  /** Follows a started rollout (`ctx.ref` is what start/poll returned). */
  poll?(ctx: ProviderContext<T>): Promise<StepResult>;
  /**
   * Called instead of start() when a process died while start() was in flight for this attempt
   * (ctx.ref may be null). Must find what that start did and continue from there, never trigger
   * a second deployment. Without it, the scheduler fails the deployment saying so.
   */
  recover?(ctx: ProviderContext<T>): Promise<StepResult>;
  /** Recalls an in-flight rollout (only when `cancellable`). */
  cancel?(ctx: ProviderContext<T>): Promise<void>;
  /**
   * Called when a deployment is claimed ahead of its instant (about 1.5 s), once per deployment,
   * with its resolved target: a chance to get ready without side effects the target can see
   * (e.g. open a connection), so that at the instant only the call remains. Must not throw.
   */
  prepare?(target: T): void;
  /**
   * Restores what ran before this deployment's change (an app's `on_failure: "rollback"`, or
   * `POST /v1/scheduled_deployments/{id}/rollback` by hand). `ctx.ref` is the deployment's own
   * ref, so start/poll must keep in it what a rollback needs (the previous task definition, the
   * previous pod template's revision, ...). Returns the rollback's own StepResult: `follow` with
   * a ref (then pollRollback is called with it), `succeeded`, `failed` or `retry`. Like start, it
   * must not act twice for one rollback: a ref it returned is handed back after a crash.
   * Without it, the provider cannot roll back and the scheduler says so.
   */
  rollback?(ctx: ProviderContext<T>): Promise<StepResult>;
  /** Follows a rollback that rollback() started (`ctx.ref` is what rollback/pollRollback returned). */
  pollRollback?(ctx: ProviderContext<T>): Promise<StepResult>;
}
