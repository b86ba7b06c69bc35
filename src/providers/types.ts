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
  /** Set for rollback()/pollRollback() calls only: which rollback this is. */
  rollback?: RollbackInfo;
}

/**
 * What a rollback call is told besides ProviderContext. For these calls `deployment.attempt` is
 * the rollback's attempt and `deployment.startedAt` when the rollback started (timeouts count
 * from there).
 */
export interface RollbackInfo {
  /** 1 for a deployment's first rollback, 2 for one asked for again by hand, ... (e.g. a distinct Idempotency-Key). */
  seq: number;
  /**
   * True when an earlier rollback() call of this same rollback may have acted: a transient
   * failure retried, or a process that died during the call. rollback() must then look before
   * acting (is the service already back on the previous version? is there a rollback deployment
   * created since `deployment.startedAt`?) and follow what it finds instead of acting again.
   */
  recovering: boolean;
  /** The deployment's own ref (what start/poll kept), also for pollRollback. */
  deploymentRef: ProviderRef | null;
  /** What rollback()/pollRollback() returned so far for this rollback (null before). */
  rollbackRef: ProviderRef | null;
}

/** The ref key by which start/poll say the deployment changed the target (see Provider.rollback). */
export const CHANGED_REF_KEY = 'changed';
/** The ref key by which a failed rollback() says a rollback is not possible at all (not a failure of one made). */
export const NOT_POSSIBLE_REF_KEY = 'rollback_not_possible';

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
   * The lane a call to this target takes in a burst (e.g. a webhook's origin) and how many calls
   * of one lane may be in flight at once: the scheduler makes the next call of a lane as one of
   * its calls is answered, instead of queueing a whole burst in memory at once. Without it, a
   * burst's calls are all made at once.
   */
  lane?(target: T): { key: string; width: number } | undefined;
  /**
   * Restores what ran before this deployment's change (an app's `on_failure: "rollback"`, or
   * `POST /v1/scheduled_deployments/{id}/rollback` by hand).
   *
   * When it is called: automatically only for a deployment that ended `failed` with
   * `ref.changed === true` (CHANGED_REF_KEY): start/poll/recover must set it in the ref they return
   * once their change took effect (an UpdateService answered, a patch applied, a workflow
   * dispatched, a webhook request the receiver may have acted on). Without it the scheduler
   * starts no rollback and says "nothing was changed". By hand, also only with `changed: true`
   * (else 409 nothing_changed).
   *
   * `ctx.ref` is the deployment's own ref, so start/poll must also keep in it what a rollback
   * needs (the previous task definition, the previous pod template's revision, the last active
   * deployment, ...); `ctx.rollback` says which rollback this is.
   * Returns the rollback's own StepResult:
   * - `follow` with a ref (stored as the rollback's ref; pollRollback is called with it);
   * - `succeeded` (done at once, or nothing to restore: say so in `message`, e.g. "nothing to restore");
   * - `failed` (loud: error state, an error log line, a `rollback_failed` notification); with
   *   `ref: {rollback_not_possible: true, ...}` (NOT_POSSIBLE_REF_KEY) when no rollback can be
   *   made at all (no previous version known, a controller shipclock cannot drive);
   * - `retry` (transient): called again after the app's backoff, up to its max_attempts, with
   *   `ctx.rollback.recovering` true.
   * It must not act twice for one rollback: after a crash during the call it is called again
   * with `ctx.rollback.recovering` true and must find what the first call did.
   * Without it, the provider cannot roll back: by hand 422 rollback_not_supported; automatically
   * rollback_state `not_possible`.
   */
  rollback?(ctx: ProviderContext<T>): Promise<StepResult>;
  /**
   * Follows a rollback that rollback() started: `ctx.ref` is what rollback/pollRollback returned
   * last (`ctx.rollback.deploymentRef` is the deployment's). Same results as rollback(); a
   * `retry` here polls again after a backoff, bounded by the target's timeout_seconds.
   */
  pollRollback?(ctx: ProviderContext<T>): Promise<StepResult>;
}
