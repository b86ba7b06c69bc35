/**
 * Request and response schemas (TypeBox). The same objects validate requests, shape responses
 * and produce /openapi.json.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';

export const Uuid = Type.String({ format: 'uuid' });
export const IdParams = Type.Object({ id: Uuid });

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'stable machine-readable code, e.g. nonexistent_local_time' }),
      message: Type.String(),
      field: Type.Optional(Type.String({ description: 'the request field the error is about' })),
      freeze: Type.Optional(Type.Object({ id: Type.String(), name: Type.String() }, { description: 'code "frozen": the deploy freeze the instant falls in' })),
      next_allowed_at: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
        description: 'code "frozen": the first instant at or after the requested one that no freeze covers for the app and its dependency (null: none within a year)',
      })),
    }),
  },
  { $id: 'Error' },
);

export const ListQuery = {
  cursor: Type.Optional(Type.String({ description: 'next_cursor from the previous page' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
};

export function Page<T extends TSchema>(item: T) {
  return Type.Object({ result: Type.Array(item), next_cursor: Type.Union([Type.String(), Type.Null()]) });
}

/** A discriminated union: validation reports errors of the branch named by `type` only. */
function TaggedUnion<T extends TSchema[]>(schemas: [...T], description: string) {
  return Type.Unsafe<Static<T[number]>>({ type: 'object', oneOf: schemas, discriminator: { propertyName: 'type' }, required: ['type'], description });
}

const Seconds = (def: number, max: number, description: string) => Type.Optional(Type.Integer({ minimum: 1, maximum: max, default: def, description }));
const Headers = Type.Record(Type.String({ pattern: '^[A-Za-z0-9-]{1,100}$' }), Type.String({ maxLength: 4096 }), { maxProperties: 50 });

export const WebhookTarget = Type.Object(
  {
    type: Type.Literal('webhook'),
    url: Type.String({ format: 'uri', pattern: '^https?://', maxLength: 2048 }),
    secret: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'HMAC-SHA256 signing secret; write-only' })),
    headers: Type.Optional(Headers),
    timeout_seconds: Seconds(30, 300, 'per-request timeout (default 30)'),
  },
  { additionalProperties: false },
);

export const CommandTarget = Type.Object(
  {
    type: Type.Literal('command'),
    command: Type.String({ minLength: 1, maxLength: 1024 }),
    args: Type.Optional(Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 100 })),
    cwd: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    timeout_seconds: Seconds(600, 86400, 'kill the command after this long (default 600)'),
  },
  { additionalProperties: false },
);

const Rollout = {
  poll_interval_seconds: Seconds(15, 3600, 'how often to look at the rollout (default 15)'),
  timeout_seconds: Seconds(1800, 86400, 'fail the deployment if the rollout has not ended by then (default 1800)'),
};

export const EcsTarget = Type.Object(
  {
    type: Type.Literal('ecs'),
    region: Type.String({ pattern: '^[a-z]{2}(-[a-z]+)+-\\d+$', description: 'e.g. eu-west-1' }),
    cluster: Type.String({ minLength: 1, maxLength: 2048 }),
    service: Type.String({ minLength: 1, maxLength: 2048 }),
    image: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'new image: registers a task-definition revision' })),
    container: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'container whose image changes (default: the first essential one)' })),
    credentials: Type.String({ format: 'uuid', description: 'id of an aws credential' }),
    ...Rollout,
  },
  { additionalProperties: false },
);

export const DigitaloceanTarget = Type.Object(
  {
    type: Type.Literal('digitalocean'),
    app_id: Type.String({ minLength: 1, maxLength: 255 }),
    credentials: Type.String({ format: 'uuid', description: 'id of a digitalocean credential' }),
    force_build: Type.Optional(Type.Boolean({ default: false })),
    ...Rollout,
  },
  { additionalProperties: false },
);

export const GithubActionsTarget = Type.Object(
  {
    type: Type.Literal('github_actions'),
    credentials: Type.String({ format: 'uuid', description: 'id of a github credential' }),
    repository: Type.String({ minLength: 1, maxLength: 140, description: 'owner/name' }),
    workflow: Type.String({ minLength: 1, maxLength: 255, description: 'the workflow file name in .github/workflows (deploy.yml) or its numeric id' }),
    ref: Type.String({ minLength: 1, maxLength: 255, description: 'the branch or tag the workflow runs on' }),
    inputs: Type.Optional(Type.Record(Type.String({ maxLength: 100 }), Type.String({ maxLength: 4096 }), { maxProperties: 20, description: 'workflow_dispatch inputs (strings); deployment_id, run_at, action and shipclock_id are set by shipclock when the workflow declares them' })),
    ...Rollout,
  },
  { additionalProperties: false },
);

export const KubernetesTarget = Type.Object(
  {
    type: Type.Literal('kubernetes'),
    credentials: Type.String({ format: 'uuid', description: 'id of a kubernetes credential' }),
    namespace: Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' }),
    kind: Type.Optional(Type.Union([Type.Literal('Deployment'), Type.Literal('StatefulSet'), Type.Literal('DaemonSet')], { default: 'Deployment' })),
    name: Type.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' }),
    container: Type.Optional(Type.String({ minLength: 1, maxLength: 63, description: 'container whose image changes (default: the only one)' })),
    image: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'new image; without it, a rollout restart' })),
    ...Rollout,
  },
  { additionalProperties: false },
);

export const Target = TaggedUnion([WebhookTarget, CommandTarget, EcsTarget, DigitaloceanTarget, GithubActionsTarget, KubernetesTarget], 'where the app is deployed: webhook, command, ecs, digitalocean, github_actions or kubernetes');
export type TargetInput = Static<typeof WebhookTarget> | Static<typeof CommandTarget> | Static<typeof EcsTarget> | Static<typeof DigitaloceanTarget> | Static<typeof GithubActionsTarget> | Static<typeof KubernetesTarget>;

export const RetryPolicy = Type.Object(
  {
    max_attempts: Type.Integer({ minimum: 1, maximum: 20, default: 3, description: 'attempts in all, for transient failures (default 3)' }),
    backoff_seconds: Type.Integer({ minimum: 0, maximum: 3600, default: 10, description: 'wait before the second attempt, doubling after (default 10)' }),
  },
  { additionalProperties: false },
);

/**
 * An app's approval policy as requests give it. Its values (required 1–5, from_roles ⊆
 * owner/deployer) are checked by the service (src/services/approvals.ts validatePolicy), which
 * answers 422 naming approval.required or approval.from_roles.
 */
export const ApprovalPolicy = Type.Object(
  {
    required: Type.Optional(Type.Number({ description: 'required: approvals a deployment needs before it fires, an integer 1–5' })),
    from_roles: Type.Optional(Type.Array(Type.String({ maxLength: 20 }), {
      maxItems: 10, description: 'whose approvals count: "owner", "deployer" or both (default both)',
    })),
  },
  { additionalProperties: false, description: 'approvals needed before a deployment of the app fires; null: none' },
);
const ApprovalPolicyOrNull = Type.Union([ApprovalPolicy, Type.Null()]);

const AppName = Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9][A-Za-z0-9._ -]*$' });

export const OnFailure = Type.Union([Type.Literal('none'), Type.Literal('rollback')], {
  description: 'what happens when a deployment fails after it changed something: "rollback" restores what ran before (default "none")',
});

export const AppCreate = Type.Object(
  {
    name: AppName, target: Target, retry: Type.Optional(Type.Partial(RetryPolicy)), approval: Type.Optional(ApprovalPolicyOrNull),
    on_failure: Type.Optional(OnFailure),
  },
  { additionalProperties: false },
);
export const AppUpdate = Type.Object(
  {
    name: Type.Optional(AppName), target: Type.Optional(Target), retry: Type.Optional(Type.Partial(RetryPolicy)),
    approval: Type.Optional(ApprovalPolicyOrNull), on_failure: Type.Optional(OnFailure),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const App = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    target: Type.Record(Type.String(), Type.Unknown(), { description: 'the target, secrets omitted (has_secret tells whether a webhook secret is set)' }),
    retry: RetryPolicy,
    on_failure: OnFailure,
    approval: Type.Union([
      Type.Object({ required: Type.Integer(), from_roles: Type.Array(Type.String()) }),
      Type.Null(),
    ], { description: 'the approval policy: approvals needed before a deployment fires, and from which roles; null: none' }),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'App' },
);

export const CredentialCreate = TaggedUnionProvider();
function TaggedUnionProvider() {
  const aws = Type.Object(
    {
      name: Type.String({ minLength: 1, maxLength: 100 }),
      provider: Type.Literal('aws'),
      access_key_id: Type.String({ minLength: 16, maxLength: 128, pattern: '^[A-Z0-9]+$' }),
      secret_access_key: Type.String({ minLength: 1, maxLength: 256 }),
      session_token: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    },
    { additionalProperties: false },
  );
  const digitalocean = Type.Object(
    { name: Type.String({ minLength: 1, maxLength: 100 }), provider: Type.Literal('digitalocean'), token: Type.String({ minLength: 1, maxLength: 512 }) },
    { additionalProperties: false },
  );
  const github = Type.Object(
    {
      name: Type.String({ minLength: 1, maxLength: 100 }),
      provider: Type.Literal('github'),
      token: Type.String({ minLength: 1, maxLength: 1024, description: 'a token allowed to dispatch workflows (actions: write) and read the workflow file (contents: read); write-only' }),
      api_url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'GitHub Enterprise Server API root, e.g. https://ghe.example.com/api/v3 (default https://api.github.com); https, or http for localhost only' })),
    },
    { additionalProperties: false },
  );
  // A kubeconfig document (its current-context is used), or a server URL with a bearer token.
  const kubernetes = Type.Object(
    {
      name: Type.String({ minLength: 1, maxLength: 100 }),
      provider: Type.Literal('kubernetes'),
      kubeconfig: Type.Optional(Type.String({ minLength: 1, maxLength: 65536, description: 'a kubeconfig document; its current-context is used; write-only' })),
      server: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'the API server URL (https://), with token' })),
      token: Type.Optional(Type.String({ minLength: 1, maxLength: 8192, description: 'a bearer token (e.g. a ServiceAccount token); write-only' })),
      ca_certificate: Type.Optional(Type.String({ minLength: 1, maxLength: 65536, description: 'PEM CA bundle of the API server (default: the system CAs)' })),
    },
    { additionalProperties: false },
  );
  return Type.Unsafe<Static<typeof aws> | Static<typeof digitalocean> | Static<typeof github> | Static<typeof kubernetes>>({
    type: 'object', oneOf: [aws, digitalocean, github, kubernetes], discriminator: { propertyName: 'provider' }, required: ['provider'],
  });
}

export const Credential = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    provider: Type.Union([Type.Literal('aws'), Type.Literal('digitalocean'), Type.Literal('github'), Type.Literal('kubernetes')]),
    access_key_id: Type.Optional(Type.String({ description: 'aws only: the key id (not secret), masked but its last 4 characters' })),
    api_url: Type.Optional(Type.String({ description: 'github only: the API root it calls (GitHub Enterprise Server), when set' })),
    server: Type.Optional(Type.String({ description: 'kubernetes only: the API server URL' })),
    context: Type.Optional(Type.String({ description: 'kubernetes only: the kubeconfig context used' })),
    created_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'Credential' },
);

export const Disambiguation = Type.Union([Type.Literal('earlier'), Type.Literal('later'), Type.Literal('reject')], {
  description: 'for a local time that occurs twice (DST ends): earlier (default), later, or reject → 422',
});

const TimeFields = {
  year: Type.Integer({ description: '1970–9999' }),
  month: Type.Integer({ description: '1–12' }),
  day: Type.Integer({ description: '1–31, valid for the month' }),
  hour: Type.Integer({ description: '0–23, local wall-clock time in `timezone`' }),
  minute: Type.Integer({ description: '0–59' }),
  second: Type.Optional(Type.Integer({ description: '0–59 (default 0)' })),
  timezone: Type.String({ minLength: 1, maxLength: 64, description: 'IANA zone name, e.g. America/New_York' }),
  disambiguation: Type.Optional(Disambiguation),
  dependency_lead_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 86400, description: 'the dependency runs this long before (default 900)' })),
  expires_after_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 7 * 86400, description: 'not started within this long after the instant → missed (default 3600)' })),
};

export const OverrideFreeze = Type.Object(
  { reason: Type.String({ maxLength: 1000, description: 'why this deployment goes out during the freeze (non-empty); audited' }) },
  { additionalProperties: false, description: 'owners only: schedule into a deploy freeze on purpose; freezes then never hold this deployment' },
);

export const ScheduleCreate = Type.Object(
  {
    app: Type.String({ format: 'uuid', description: 'id of the app to deploy' }),
    override_freeze: Type.Optional(OverrideFreeze),
    dependency: Type.Optional(Type.Union([Type.String({ format: 'uuid', description: 'id of an app deployed dependency_lead_seconds before, which must succeed first' }), Type.Null()])),
    ...TimeFields,
  },
  { additionalProperties: false },
);

export const ScheduleUpdate = Type.Object({ ...TimeFields, override_freeze: Type.Optional(OverrideFreeze) }, { additionalProperties: false });

const LocalTimeOut = Type.Object({ year: Type.Integer(), month: Type.Integer(), day: Type.Integer(), hour: Type.Integer(), minute: Type.Integer(), second: Type.Integer() });
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const DateTime = Type.String({ format: 'date-time' });

const Decision = Type.Object({
  user: Type.Object({ id: Uuid, email: Type.String() }),
  at: DateTime,
  comment: Nullable(Type.String()),
  via: Nullable(Type.String({ description: 'how it was given when not directly, e.g. "reminder link"' })),
});

const deploymentFields = {
  id: Uuid,
  app: Type.Object({ id: Uuid, name: Type.String() }),
  state: Type.Union(['scheduled', 'held', 'running', 'succeeded', 'failed', 'canceled', 'skipped', 'missed'].map((s) => Type.Literal(s))),
  run_at: DateTime,
  timezone: Type.String(),
  local: LocalTimeOut,
  utc_offset: Type.String({ description: 'the zone\'s offset at run_at, e.g. -04:00' }),
  dependency_lead_seconds: Nullable(Type.Integer()),
  expires_at: DateTime,
  attempts: Type.Integer(),
  error: Nullable(Type.String()),
  provider_ref: Nullable(Type.Record(Type.String(), Type.Unknown(), { description: 'the provider\'s own identifiers (ECS deployment id, task definition, DigitalOcean deployment id, console_url)' })),
  created_at: DateTime,
  started_at: Nullable(DateTime),
  finished_at: Nullable(DateTime),
  schedule_id: Nullable(Type.String({ format: 'uuid', description: 'the recurring schedule this is an occurrence (or an occurrence\'s dependency) of; null for a one-off deployment' })),
  held_by: Type.Optional(Nullable(Type.String({ format: 'uuid', description: 'state held: the deploy freeze holding it (null when held because its dependency is)' }))),
  freeze_override: Type.Optional(Nullable(Type.Object({ reason: Type.String(), by: Type.String(), at: DateTime }, {
    description: 'an owner scheduled (or released) it into a deploy freeze on purpose: freezes never hold it',
  }))),
  rollback: Nullable(Type.Object(
    {
      state: Type.Union(['pending', 'running', 'succeeded', 'failed', 'not_possible'].map((s) => Type.Literal(s))),
      ref: Nullable(Type.Record(Type.String(), Type.Unknown(), { description: 'the provider\'s identifiers of the rollback (e.g. the ECS deployment restoring the previous task definition)' })),
      error: Type.Optional(Type.String()),
      started_at: Nullable(DateTime),
      finished_at: Nullable(DateTime),
    },
    { description: 'the rollback of this deployment (the app\'s on_failure "rollback", or POST …/rollback); null when none was made' },
  )),
  approval: Nullable(Type.Object({
    required: Type.Integer({ description: 'approvals needed: the app\'s policy when this was scheduled' }),
    approvals: Type.Array(Decision),
    rejection: Nullable(Decision),
    status: Type.Union([Type.Literal('pending'), Type.Literal('approved'), Type.Literal('rejected')]),
  }, { description: 'null when the app needed no approval when this was scheduled; a deployment not approved at its instant ends skipped' })),
};

const DependencyOut = Type.Object({ ...deploymentFields, dependency: Type.Null() });
export const ScheduledDeployment = Type.Object({ ...deploymentFields, dependency: Nullable(DependencyOut) }, { $id: 'ScheduledDeployment' });
export const RescheduledDeployment = Type.Object({
  ...deploymentFields,
  dependency: Nullable(DependencyOut),
  approval_reset: Type.Boolean({ description: 'true when the move (more than its expiry) voided the approvals given: they must be given again' }),
});
export const ApproveBody = Type.Object(
  { comment: Type.Optional(Type.String({ maxLength: 2000 })) },
  { additionalProperties: false },
);
export const RejectBody = Type.Object(
  { comment: Type.Optional(Type.String({ maxLength: 2000, description: 'required: why' })) },
  { additionalProperties: false },
);
export const ScheduledDeploymentDetail = Type.Object({
  ...deploymentFields,
  dependency: Nullable(DependencyOut),
  events: Type.Array(Type.Object({ id: Type.String(), at: DateTime, state: Type.String(), message: Nullable(Type.String()) })),
  log: Type.String(),
});

export const ListDeploymentsQuery = Type.Object(
  {
    state: Type.Optional(Type.String({ pattern: '^(scheduled|held|running|succeeded|failed|canceled|skipped|missed)(,(scheduled|held|running|succeeded|failed|canceled|skipped|missed))*$', description: 'one state or several, comma-separated' })),
    app: Type.Optional(Uuid),
    schedule: Type.Optional(Type.String({ format: 'uuid', description: 'only the occurrences of this recurring schedule' })),
    approval: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('approved'), Type.Literal('rejected')], {
      description: 'by approval status; pending: scheduled, needing approvals it does not have yet and not rejected',
    })),
    from: Type.Optional(Type.String({ format: 'date-time', description: 'run_at ≥ from' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'run_at < to' })),
    ...ListQuery,
  },
  { additionalProperties: false },
);

export const Wrapped = <T extends TSchema>(t: T) => Type.Object({ result: t });
