/**
 * The local fakes against the published API definitions in ../shared/specs, so the fakes cannot
 * drift from the real APIs without a test failing:
 * - ECS: every answer of the fake (successes and errors) is walked against the Smithy JSON AST —
 *   members must exist on the operation's output shape, with the right types (timestamps as
 *   epoch-second numbers, enums with allowed values) — and every error `__type` must be an error
 *   the operation declares (or an AWS common error), with the protocol's HTTP status.
 * - DigitalOcean: every answer is validated with ajv against the dereferenced OpenAPI schema of
 *   its operation and status (plus a walk that rejects members the schema does not declare), and
 *   the declared rate-limit headers must be present and well-typed.
 * - GitHub: the same, against the subset of GitHub's REST OpenAPI description the provider uses
 *   (fixtures/specs/github); errors the operation does not list must be GitHub's `basic-error`, and
 *   every answer carries integer x-ratelimit-* headers. The provider's requests are checked too:
 *   the dispatch body against its requestBody schema, query parameters against the declared ones.
 * - Kubernetes: every answer is validated with ajv against the apps/v1 OpenAPI v3 document — a 200
 *   against its operation's schema, an error against meta/v1 Status (the document declares no error
 *   bodies) — with the same walk for undeclared members; every patch the provider sent names only
 *   members of the workload's schema.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { ecsProvider, ECS_READ_ONLY_TASK_DEFINITION_FIELDS } from '../src/providers/ecs.ts';
import { digitaloceanProvider } from '../src/providers/digitalocean.ts';
import type { ProviderContext, StepResult } from '../src/providers/types.ts';
import { ECS_TARGET_PREFIX, startEcsFake, type EcsFake } from './fakes/ecs-fake.ts';
import { startDigitaloceanFake, type DigitaloceanFake } from './fakes/digitalocean-fake.ts';
import { githubActionsProvider } from '../src/providers/github-actions.ts';
import { BARE_WORKFLOW, FULL_WORKFLOW, startGithubFake, type GhRecordedResponse, type GithubFake } from './fakes/github-fake.ts';
import { kubernetesProvider, type KubernetesTarget } from '../src/providers/kubernetes.ts';
import { startKubernetesFake, type KubernetesFake } from './fakes/kubernetes-fake.ts';

// A copy of ../shared/specs (see its README for provenance), so a clone tests on its own.
const SPECS = process.env.SHIPCLOCK_SPECS_DIR ?? path.resolve(import.meta.dirname, 'fixtures/specs');
const ECS_MODEL = path.join(SPECS, 'aws-ecs.smithy.json');
const DO_ROOT = path.join(SPECS, 'digitalocean/apps-deployments.openapi.yaml');
// Derived here (not in shared/specs): always the repository's copy.
const GH_ROOT = path.resolve(import.meta.dirname, 'fixtures/specs/github/api.github.com.actions-subset.json');
const K8S_APPS = path.join(SPECS, 'kubernetes/apps-v1.openapi.json');

// ---------------------------------------------------------------------------------------------
// Smithy checker
// ---------------------------------------------------------------------------------------------

type Shape = { type: string; members?: Record<string, { target: string; traits?: Record<string, unknown> }>; member?: { target: string }; key?: { target: string }; value?: { target: string }; traits?: Record<string, any>; input?: { target: string }; output?: { target: string }; errors?: { target: string }[] };
const NS = 'com.amazonaws.ecs#';

/**
 * Errors every AWS JSON service may answer that service models do not list (AWS "Common Errors").
 * Status per the AWS documentation.
 */
const AWS_COMMON_ERRORS: Record<string, number> = {
  AccessDeniedException: 400, IncompleteSignature: 400, InternalFailure: 500, InvalidAction: 400,
  InvalidClientTokenId: 403, MissingAuthenticationTokenException: 403, NotAuthorized: 400,
  RequestExpired: 400, ServiceUnavailable: 503, ThrottlingException: 400, ValidationError: 400,
  UnrecognizedClientException: 400, SerializationException: 400, UnknownOperationException: 400,
};

class Smithy {
  readonly shapes: Record<string, Shape>;
  constructor(file: string) {
    this.shapes = JSON.parse(fs.readFileSync(file, 'utf8')).shapes;
  }

  op(name: string): Shape {
    const s = this.shapes[NS + name];
    assert.ok(s && s.type === 'operation', `operation ${name} is not in the model`);
    return s;
  }

  /** Problems with `value` as an instance of shape `target` (empty when it conforms). */
  check(target: string, value: unknown, at: string, out: string[] = []): string[] {
    const prelude = /^smithy\.api#(.+)$/.exec(target)?.[1];
    const shape: Shape | undefined = prelude ? { type: preludeType(prelude) } : this.shapes[target];
    if (!shape) {
      out.push(`${at}: unknown shape ${target}`);
      return out;
    }
    const bad = (what: string) => out.push(`${at}: expected ${what} (${target}), got ${JSON.stringify(value)?.slice(0, 80)}`);
    switch (shape.type) {
      case 'structure': {
        if (!isObject(value)) return bad('an object'), out;
        for (const [k, v] of Object.entries(value)) {
          const m = shape.members?.[k];
          if (!m) out.push(`${at}.${k}: not a member of ${target}`);
          else this.check(m.target, v, `${at}.${k}`, out);
        }
        for (const [k, m] of Object.entries(shape.members ?? {})) {
          if (m.traits?.['smithy.api#required'] !== undefined && !(k in value)) out.push(`${at}.${k}: required member missing`);
        }
        return out;
      }
      case 'union': {
        if (!isObject(value) || Object.keys(value).length !== 1) return bad('a union (one member)'), out;
        const [k, v] = Object.entries(value)[0];
        const m = shape.members?.[k];
        if (!m) out.push(`${at}.${k}: not a member of ${target}`);
        else this.check(m.target, v, `${at}.${k}`, out);
        return out;
      }
      case 'list':
      case 'set':
        if (!Array.isArray(value)) return bad('a list'), out;
        value.forEach((v, i) => this.check(shape.member!.target, v, `${at}[${i}]`, out));
        return out;
      case 'map':
        if (!isObject(value)) return bad('a map'), out;
        for (const [k, v] of Object.entries(value)) {
          this.check(shape.key!.target, k, `${at}{key}`, out);
          this.check(shape.value!.target, v, `${at}.${k}`, out);
        }
        return out;
      case 'enum': {
        const allowed = Object.entries(shape.members ?? {}).map(([k, m]) => (m.traits?.['smithy.api#enumValue'] as string) ?? k);
        if (typeof value !== 'string' || !allowed.includes(value)) bad(`one of ${allowed.join('|')}`);
        return out;
      }
      case 'intEnum':
        if (!Number.isInteger(value)) bad('an integer enum');
        return out;
      case 'string': {
        if (typeof value !== 'string') return bad('a string'), out;
        const legacy = shape.traits?.['smithy.api#enum'] as { value: string }[] | undefined;
        if (legacy && !legacy.some((e) => e.value === value)) bad(`one of ${legacy.map((e) => e.value).join('|')}`);
        return out;
      }
      case 'blob':
        if (typeof value !== 'string') bad('a base64 string');
        return out;
      case 'boolean':
        if (typeof value !== 'boolean') bad('a boolean');
        return out;
      case 'byte': case 'short': case 'integer': case 'long': case 'bigInteger':
        if (!Number.isInteger(value)) bad('an integer');
        return out;
      case 'float': case 'double': case 'bigDecimal':
        if (typeof value !== 'number') bad('a number');
        return out;
      case 'timestamp':
        // awsJson1_1 sends timestamps as epoch seconds (fractions allowed), not ms, not strings.
        if (typeof value !== 'number' || value < 946_684_800 || value > 4_102_444_800) bad('epoch seconds');
        return out;
      case 'document':
        return out;
      default:
        out.push(`${at}: unhandled shape type ${shape.type}`);
        return out;
    }
  }
}

function preludeType(name: string): string {
  const t = name.replace(/^Primitive/, '').toLowerCase();
  return t === 'bigdecimal' ? 'bigDecimal' : t === 'biginteger' ? 'bigInteger' : t;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Problems with one recorded ECS fake answer. */
function checkEcsResponse(model: Smithy, r: { op: string; status: number; body: Record<string, any> }): string[] {
  if (!r.op) return []; // requests that named no operation are not the model's business
  const op = model.op(r.op);
  if (r.status === 200) return model.check(op.output!.target, r.body, r.op);
  const errs: string[] = [];
  const type = String(r.body.__type ?? '');
  const name = type.includes('#') ? type.slice(type.indexOf('#') + 1) : type;
  if (type.includes('#') && !type.startsWith(NS)) errs.push(`${r.op}: __type ${type} is not in namespace ${NS}`);
  const declared = (op.errors ?? []).map((e) => e.target);
  if (declared.includes(NS + name)) {
    const shape = model.shapes[NS + name];
    const expected = shape.traits?.['smithy.api#httpError'] ?? (shape.traits?.['smithy.api#error'] === 'server' ? 500 : 400);
    if (r.status !== expected) errs.push(`${r.op}: ${name} answered ${r.status}, the model says ${expected}`);
    const { __type: _t, ...members } = r.body;
    model.check(NS + name, members, `${r.op}!${name}`, errs);
  } else if (name in AWS_COMMON_ERRORS) {
    if (r.status !== AWS_COMMON_ERRORS[name]) errs.push(`${r.op}: common error ${name} answered ${r.status}, AWS says ${AWS_COMMON_ERRORS[name]}`);
    const extra = Object.keys(r.body).filter((k) => k !== '__type' && k !== 'message');
    if (extra.length) errs.push(`${r.op}: common error ${name} has members ${extra.join(', ')}`);
  } else {
    errs.push(`${r.op}: error ${type} is not declared by the operation (declared: ${declared.map((d) => d.slice(NS.length)).join(', ')})`);
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// OpenAPI checker
// ---------------------------------------------------------------------------------------------

type Schema = Record<string, any>;

/** Members of `value` that `schema` does not declare (OpenAPI schemas rarely say additionalProperties: false). */
function undeclared(schema: Schema | undefined, value: unknown, at: string, out: string[] = []): string[] {
  if (!schema || value === null || typeof value !== 'object') return out;
  const parts: Schema[] = [schema, ...(schema.allOf ?? []), ...(schema.anyOf ?? []), ...(schema.oneOf ?? [])];
  if (Array.isArray(value)) {
    const items = parts.find((p) => p.items)?.items;
    value.forEach((v, i) => undeclared(items, v, `${at}[${i}]`, out));
    return out;
  }
  const props: Record<string, Schema[]> = {};
  let declaresAny = false;
  const collect = (s: Schema) => {
    if (s.properties) {
      declaresAny = true;
      for (const [k, v] of Object.entries(s.properties)) (props[k] ??= []).push(v as Schema);
    }
    for (const sub of [...(s.allOf ?? []), ...(s.anyOf ?? []), ...(s.oneOf ?? [])]) collect(sub);
  };
  collect(schema);
  if (!declaresAny) return out; // a free-form object (e.g. child steps: `type: object`)
  for (const [k, v] of Object.entries(value)) {
    if (!props[k]) out.push(`${at}.${k}: not declared by the schema`);
    else for (const s of props[k]) undeclared(s, v, `${at}.${k}`, out);
  }
  return out;
}

function newAjv(): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true });
  const addFormats = (addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule;
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && Math.abs(n) < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  return ajv;
}

function checkDoResponse(api: any, ajv: Ajv, r: { method: string; route: string; status: number; headers: Record<string, string>; body: unknown }): string[] {
  const errs: string[] = [];
  const op = api.paths[r.route]?.[r.method.toLowerCase()];
  if (!op) return [`${r.method} ${r.route}: no such operation in the OpenAPI document`];
  const res = op.responses[String(r.status)] ?? op.responses.default;
  if (!res) return [`${r.method} ${r.route}: status ${r.status} is not declared`];
  const schema = res.content?.['application/json']?.schema;
  if (!schema) return [`${r.method} ${r.route} ${r.status}: no JSON schema`];
  if (!String(r.headers['content-type'] ?? '').startsWith('application/json')) errs.push(`${r.route} ${r.status}: content-type ${r.headers['content-type']}`);
  const validate = ajv.compile(schema);
  if (!validate(r.body)) {
    for (const e of validate.errors ?? []) errs.push(`${r.method} ${r.route} ${r.status}: ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
  }
  undeclared(schema, r.body, `${r.method} ${r.route} ${r.status}`, errs);
  for (const [name, h] of Object.entries<any>(res.headers ?? {})) {
    const v = r.headers[name.toLowerCase()];
    if (v === undefined) errs.push(`${r.route} ${r.status}: header ${name} missing`);
    else if (h.schema?.type === 'integer' && !/^-?\d+$/.test(v)) errs.push(`${r.route} ${r.status}: header ${name}=${v} is not an integer`);
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------

const AWS_CREDS = { provider: 'aws' as const, access_key_id: 'AKIASPECCHECK', secret_access_key: 'spec-check-secret' };

function ctxFor<T>(target: T, credentials: ProviderContext<T>['credentials'], attempt = 1): ProviderContext<T> {
  return {
    deployment: { id: 'd', teamId: 't', appId: 'a', appName: 'x', runAt: new Date(), attempt, startedAt: new Date(Date.now() - 1000) },
    target, credentials, ref: null, signal: new AbortController().signal, log: () => {},
  };
}

async function drive<T>(p: { start(c: ProviderContext<T>): Promise<StepResult>; poll?(c: ProviderContext<T>): Promise<StepResult> }, c: ProviderContext<T>): Promise<StepResult> {
  let r = await p.start(c);
  for (let i = 0; i < 10 && r.kind === 'follow'; i++) r = await p.poll!({ ...c, ref: r.ref });
  return r;
}

describe('ECS fake vs the Smithy model', () => {
  let fake: EcsFake;
  let model: Smithy;

  before(async () => {
    model = new Smithy(ECS_MODEL);
    fake = await startEcsFake({ region: 'us-west-2' });
    process.env.AWS_ENDPOINT_URL_ECS = fake.url;
  });
  after(async () => {
    delete process.env.AWS_ENDPOINT_URL_ECS;
    await fake.close();
  });

  test('the checker itself catches drift (extra member, string timestamp, bad enum, undeclared error)', () => {
    const ok = { services: [], failures: [{ arn: 'a', reason: 'MISSING' }] };
    assert.deepEqual(checkEcsResponse(model, { op: 'DescribeServices', status: 200, body: ok }), []);
    const svc = { serviceName: 's', createdAt: '2024-01-01T00:00:00Z', deployments: [{ id: 'x', rolloutState: 'DONE', createdAt: 1_700_000_000_000 }], colour: 'blue' };
    const errs = checkEcsResponse(model, { op: 'DescribeServices', status: 200, body: { services: [svc] } });
    assert.ok(errs.some((e) => e.includes('.colour: not a member')), errs.join('\n'));
    assert.ok(errs.some((e) => e.includes('services[0].createdAt: expected epoch seconds')), errs.join('\n'));
    assert.ok(errs.some((e) => e.includes('rolloutState: expected one of COMPLETED|FAILED|IN_PROGRESS')), errs.join('\n'));
    assert.ok(errs.some((e) => e.includes('deployments[0].createdAt: expected epoch seconds')), errs.join('\n'));
    const e2 = checkEcsResponse(model, { op: 'DescribeServices', status: 400, body: { __type: `${NS}ServiceNotFoundException`, message: 'x' } });
    assert.match(e2.join('\n'), /not declared by the operation/);
    const e3 = checkEcsResponse(model, { op: 'UpdateService', status: 500, body: { __type: `${NS}ServiceNotFoundException`, message: 'x' } });
    assert.match(e3.join('\n'), /answered 500, the model says 400/);
  });

  test('the read-only task-definition members are exactly those RegisterTaskDefinition does not take', () => {
    const td = Object.keys(model.shapes[NS + 'TaskDefinition'].members!);
    const reg = new Set(Object.keys(model.shapes[NS + 'RegisterTaskDefinitionRequest'].members!));
    assert.deepEqual(td.filter((k) => !reg.has(k)).sort(), [...ECS_READ_ONLY_TASK_DEFINITION_FIELDS].sort());
  });

  test('every answer the fake gave across the provider scenarios matches the model', async () => {
    fake.addService({
      cluster: 'prod', service: 'web', tags: [{ key: 'team', value: 'web' }],
      taskDefinition: {
        family: 'web', networkMode: 'awsvpc', requiresCompatibilities: ['FARGATE'], cpu: '256', memory: '512',
        containerDefinitions: [{ name: 'web', image: 'web:1', essential: true, portMappings: [{ containerPort: 80, protocol: 'tcp' }] }],
      },
    });
    const target = { type: 'ecs' as const, region: 'us-west-2', cluster: 'prod', service: 'web' };
    assert.equal((await drive(ecsProvider, ctxFor(target, AWS_CREDS))).kind, 'succeeded');
    assert.equal((await drive(ecsProvider, ctxFor({ ...target, image: 'web:2' }, AWS_CREDS))).kind, 'succeeded');
    fake.failNextRollout();
    assert.equal((await drive(ecsProvider, ctxFor(target, AWS_CREDS))).kind, 'failed');
    // DescribeServices comes first now: UpdateService's own errors are injected on it.
    for (const kind of ['throttle', 'server', 'accessDenied', 'serviceNotFound', 'clusterNotFound', 'unrecognizedClient'] as const) {
      fake.injectErrors(kind, 1, 'UpdateService');
      await ecsProvider.start(ctxFor(target, AWS_CREDS));
    }
    // A rollback after a failed image rollout: UpdateService back to the previous revision, followed.
    fake.failNextRollout();
    const failed = await drive(ecsProvider, ctxFor({ ...target, image: 'web:4' }, AWS_CREDS));
    assert.equal(failed.kind, 'failed');
    const rbCtx = { ...ctxFor({ ...target, image: 'web:4' }, AWS_CREDS), ref: failed.ref!, rollback: { seq: 1, recovering: false, deploymentRef: failed.ref!, rollbackRef: null } };
    let rb = await ecsProvider.rollback!(rbCtx);
    for (let i = 0; i < 10 && rb.kind === 'follow'; i++) rb = await ecsProvider.pollRollback!({ ...rbCtx, ref: rb.ref });
    assert.equal(rb.kind, 'succeeded', JSON.stringify(rb));
    // Services whose deployment controller is not ECS, and UpdateService's answer to them.
    fake.addService({ cluster: 'prod', service: 'bluegreen', deploymentController: 'CODE_DEPLOY', taskDefinition: { family: 'bg', containerDefinitions: [{ name: 'bg', image: 'bg:1' }] } });
    assert.equal((await ecsProvider.start(ctxFor({ ...target, service: 'bluegreen' }, AWS_CREDS))).kind, 'failed');
    await fetch(fake.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${ECS_TARGET_PREFIX}UpdateService`, authorization: 'AWS4-HMAC-SHA256 Credential=AKIAX/20250101/us-west-2/ecs/aws4_request' },
      body: JSON.stringify({ cluster: 'prod', service: 'bluegreen', forceNewDeployment: true }),
    });
    fake.injectErrors('server', 1, 'DescribeServices');
    await ecsProvider.start(ctxFor({ ...target, image: 'web:3' }, AWS_CREDS));
    await ecsProvider.start(ctxFor({ ...target, cluster: 'nope' }, AWS_CREDS));
    await ecsProvider.start(ctxFor({ ...target, service: 'gone' }, AWS_CREDS));
    await ecsProvider.start(ctxFor({ ...target, service: 'gone', image: 'x:1' }, AWS_CREDS));
    fake.acceptedAccessKeyId = 'AKIAOTHER';
    await ecsProvider.start(ctxFor(target, AWS_CREDS));
    fake.acceptedAccessKeyId = undefined;

    const seen = new Set(fake.responses.map((r) => `${r.op} ${r.status} ${r.body.__type ?? ''}`));
    for (const want of ['DescribeServices 200 ', 'UpdateService 200 ', 'DescribeTaskDefinition 200 ', 'RegisterTaskDefinition 200 ',
      `UpdateService 400 ${NS}ServiceNotFoundException`, `UpdateService 400 ${NS}ClusterNotFoundException`, `UpdateService 400 ${NS}ThrottlingException`,
      `UpdateService 500 ${NS}ServerException`, `UpdateService 400 ${NS}AccessDeniedException`, `UpdateService 400 ${NS}UnrecognizedClientException`,
      `UpdateService 400 ${NS}InvalidParameterException`]) {
      assert.ok(seen.has(want), `scenario missing: ${want}\nseen: ${[...seen].join('\n')}`);
    }
    const rollout = fake.responses.flatMap((r) => (r.body.services ?? []).flatMap((s: any) => s.deployments.map((d: any) => d.rolloutState)));
    for (const s of ['IN_PROGRESS', 'COMPLETED', 'FAILED']) assert.ok(rollout.includes(s), `no ${s} rollout seen`);
    assert.ok(fake.responses.some((r) => r.body.failures?.some((f: any) => f.reason === 'MISSING')), 'no MISSING failure seen');
    const controllers = new Set(fake.responses.flatMap((r) => (r.body.services ?? []).map((x: any) => x.deploymentController?.type)));
    assert.ok(controllers.has('ECS') && controllers.has('CODE_DEPLOY'), `controllers seen: ${[...controllers].join(', ')}`);

    const problems = fake.responses.flatMap((r) => checkEcsResponse(model, r));
    assert.deepEqual(problems, []);
  });

  test('every request the provider sent is a valid input of its operation', () => {
    assert.ok(fake.requests.length > 10);
    const problems = fake.requests.flatMap((r) => model.check(model.op(r.op).input!.target, r.body, `${r.op} input`));
    assert.deepEqual(problems, []);
  });

  test('the wire protocol: POST /, X-Amz-Target, application/x-amz-json-1.1, unknown operation', async () => {
    const r = fake.requests[0];
    assert.match(String(r.headers['x-amz-target']), new RegExp(`^${ECS_TARGET_PREFIX.replace('.', '\\.')}[A-Za-z]+$`));
    assert.match(String(r.headers['content-type']), /^application\/x-amz-json-1\.1/);
    const res = await fetch(fake.url + '/', {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${ECS_TARGET_PREFIX}DescribeServices`, authorization: 'AWS4-HMAC-SHA256 Credential=AKIA/20250101/us-west-2/ecs/aws4_request' },
      body: JSON.stringify({ cluster: 'prod', services: ['web'] }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-amz-json-1.1');
    assert.deepEqual(checkEcsResponse(model, { op: 'DescribeServices', status: 200, body: await res.json() }), []);
  });
});

describe('DigitalOcean fake vs the OpenAPI document', () => {
  let fake: DigitaloceanFake;
  let api: any;
  let ajv: Ajv;

  before(async () => {
    api = await SwaggerParser.dereference(DO_ROOT);
    ajv = newAjv();
    fake = await startDigitaloceanFake();
    process.env.SHIPCLOCK_DIGITALOCEAN_API_URL = fake.url;
  });
  after(async () => {
    delete process.env.SHIPCLOCK_DIGITALOCEAN_API_URL;
    await fake.close();
  });

  test('the checker itself catches drift (unknown phase, extra member, missing header)', () => {
    const base = { method: 'GET', route: '/v2/apps/{app_id}/deployments/{deployment_id}', status: 200, headers: { 'content-type': 'application/json', 'ratelimit-limit': '1', 'ratelimit-remaining': '1', 'ratelimit-reset': '1' } };
    assert.deepEqual(checkDoResponse(api, ajv, { ...base, body: { deployment: { id: 'x', phase: 'ACTIVE' } } }), []);
    const errs = checkDoResponse(api, ajv, { ...base, headers: { 'content-type': 'application/json' }, body: { deployment: { id: 'x', phase: 'DONE', state: 'ok' } } });
    assert.ok(errs.some((e) => e.includes('/deployment/phase must be equal to one of the allowed values')), errs.join('\n'));
    assert.ok(errs.some((e) => e.includes('.deployment.state: not declared')), errs.join('\n'));
    assert.ok(errs.some((e) => e.includes('header ratelimit-reset missing')), errs.join('\n'));
    const e2 = checkDoResponse(api, ajv, { ...base, status: 404, body: { error: 'nope' } });
    assert.ok(e2.some((e) => e.includes("must have required property 'id'")), e2.join('\n'));
  });

  test('every answer the fake gave across the provider scenarios matches the OpenAPI schemas', async () => {
    const app = fake.addApp();
    const creds = { provider: 'digitalocean' as const, token: fake.token };
    const target = { type: 'digitalocean' as const, app_id: app };
    assert.equal((await drive(digitaloceanProvider, ctxFor(target, creds))).kind, 'succeeded');
    fake.failNextDeployment();
    assert.equal((await drive(digitaloceanProvider, ctxFor(target, creds))).kind, 'failed');
    const started = await digitaloceanProvider.start(ctxFor(target, creds));
    assert.equal(started.kind, 'follow');
    await digitaloceanProvider.cancel!({ ...ctxFor(target, creds), ref: (started as any).ref });
    await digitaloceanProvider.poll!({ ...ctxFor(target, creds), ref: (started as any).ref });
    await digitaloceanProvider.recover!(ctxFor(target, creds)); // lists deployments
    const ours = await digitaloceanProvider.start(ctxFor(target, creds));
    fake.externalDeploy(app); // supersedes ours
    await digitaloceanProvider.poll!({ ...ctxFor(target, creds), ref: (ours as any).ref });
    // The start lists the app's deployments first (what a rollback restores): errors go to the create.
    for (const status of [429, 500, 503, 403, 404, 401] as const) {
      fake.injectErrors({ status, method: 'POST', ...(status === 429 ? { retryAfter: 3 } : {}) });
      await digitaloceanProvider.start(ctxFor(target, creds));
    }
    await digitaloceanProvider.start(ctxFor(target, { provider: 'digitalocean', token: 'wrong' }));
    await digitaloceanProvider.start(ctxFor({ ...target, app_id: 'no-such-app' }, creds));
    // A rollback after a failed deployment: POST /rollback to the one active before, followed.
    fake.failNextDeployment();
    const failed = await drive(digitaloceanProvider, ctxFor(target, creds));
    assert.equal(failed.kind, 'failed');
    assert.ok(failed.ref?.previous_deployment_id, JSON.stringify(failed.ref));
    const rbCtx = { ...ctxFor(target, creds), ref: failed.ref!, rollback: { seq: 1, recovering: false, deploymentRef: failed.ref!, rollbackRef: null } };
    let rb = await digitaloceanProvider.rollback!(rbCtx);
    for (let i = 0; i < 10 && rb.kind === 'follow'; i++) rb = await digitaloceanProvider.pollRollback!({ ...rbCtx, ref: rb.ref });
    assert.equal(rb.kind, 'succeeded', JSON.stringify(rb));
    fake.injectErrors({ status: 429, path: /rollback$/ });
    assert.equal((await digitaloceanProvider.rollback!(rbCtx)).kind, 'retry');
    fake.injectErrors({ status: 404, path: /rollback$/ });
    assert.equal((await digitaloceanProvider.rollback!(rbCtx)).kind, 'failed');

    const seen = new Set(fake.responses.map((r) => `${r.method} ${r.route} ${r.status}`));
    for (const want of ['POST /v2/apps/{app_id}/deployments 200', 'GET /v2/apps/{app_id}/deployments/{deployment_id} 200',
      'GET /v2/apps/{app_id}/deployments 200', 'POST /v2/apps/{app_id}/deployments/{deployment_id}/cancel 200',
      'POST /v2/apps/{app_id}/deployments 401', 'POST /v2/apps/{app_id}/deployments 404', 'POST /v2/apps/{app_id}/deployments 429',
      'POST /v2/apps/{app_id}/deployments 500', 'POST /v2/apps/{app_id}/deployments 503', 'POST /v2/apps/{app_id}/deployments 403',
      'POST /v2/apps/{app_id}/rollback 200', 'POST /v2/apps/{app_id}/rollback 429', 'POST /v2/apps/{app_id}/rollback 404']) {
      assert.ok(seen.has(want), `scenario missing: ${want}\nseen: ${[...seen].join('\n')}`);
    }
    const phases = new Set(fake.responses.map((r: any) => r.body.deployment?.phase).filter(Boolean));
    for (const p of ['PENDING_BUILD', 'BUILDING', 'ACTIVE', 'ERROR', 'CANCELED', 'SUPERSEDED']) assert.ok(phases.has(p), `no ${p} seen`);
    assert.ok(fake.responses.some((r) => r.status === 429 && r.headers['retry-after'] === '3' && r.headers['ratelimit-remaining'] === '0'));

    const problems = fake.responses.flatMap((r) => checkDoResponse(api, ajv, r));
    assert.deepEqual(problems, []);
  });

  test('the provider sends bodies its operations accept', () => {
    const schema = api.paths['/v2/apps/{app_id}/deployments'].post.requestBody.content['application/json'].schema;
    const validate = ajv.compile(schema);
    const creates = fake.requests.filter((r) => r.method === 'POST' && /\/deployments$/.test(r.path));
    assert.ok(creates.length > 0);
    for (const r of creates) {
      assert.ok(validate(r.body), JSON.stringify(validate.errors));
      assert.deepEqual(undeclared(schema, r.body, 'create'), []);
    }
    const rbSchema = api.paths['/v2/apps/{app_id}/rollback'].post.requestBody.content['application/json'].schema;
    const validateRb = ajv.compile(rbSchema);
    const rollbacks = fake.requests.filter((r) => r.method === 'POST' && /\/rollback$/.test(r.path));
    assert.ok(rollbacks.length > 0);
    for (const r of rollbacks) {
      assert.ok(validateRb(r.body), JSON.stringify(validateRb.errors));
      assert.deepEqual(undeclared(rbSchema, r.body, 'rollback'), []);
      assert.equal(r.body?.skip_pin, true, 'the app is not left pinned to the rollback');
    }
  });
});

// ---------------------------------------------------------------------------------------------
// GitHub
// ---------------------------------------------------------------------------------------------

const RATE_LIMIT_HEADERS = ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'x-ratelimit-used'];

function checkGhResponse(api: any, ajv: Ajv, r: GhRecordedResponse): string[] {
  const errs: string[] = [];
  const at = `${r.method} ${r.route} ${r.status}`;
  const op = api.paths[r.route]?.[r.method.toLowerCase()];
  if (!op) return [`${r.method} ${r.route}: no such operation in the OpenAPI document`];
  for (const h of RATE_LIMIT_HEADERS) {
    if (!/^\d+$/.test(r.headers[h] ?? '')) errs.push(`${at}: header ${h}=${r.headers[h]} is not an integer`);
  }
  const res = op.responses[String(r.status)];
  let schema: Schema | undefined;
  if (res) {
    schema = res.content?.['application/json']?.schema;
    if (!schema) {
      if (r.body !== undefined) errs.push(`${at}: the operation declares no body, the fake sent one`);
      return errs;
    }
  } else if (r.status >= 400) {
    // Errors an operation does not list (401, rate limits, 5xx) come in GitHub's general error shape.
    schema = api.components.schemas['basic-error'];
  } else {
    return [`${at}: status ${r.status} is not declared`];
  }
  if (r.body === undefined) return [...errs, `${at}: no body`];
  if (!String(r.headers['content-type'] ?? '').startsWith('application/json')) errs.push(`${at}: content-type ${r.headers['content-type']}`);
  const validate = ajv.compile(schema!);
  if (!validate(r.body)) {
    for (const e of validate.errors ?? []) errs.push(`${at}: ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
  }
  undeclared(schema, r.body, at, errs);
  return errs;
}

describe('GitHub fake vs the REST OpenAPI description', () => {
  let fake: GithubFake;
  let api: any;
  let ajv: Ajv;
  const saved = process.env.SHIPCLOCK_GITHUB_RUN_LIST_LAG_SECONDS;

  before(async () => {
    api = await SwaggerParser.dereference(GH_ROOT);
    ajv = newAjv();
    fake = await startGithubFake();
    process.env.SHIPCLOCK_GITHUB_RUN_LIST_LAG_SECONDS = '0';
  });
  after(async () => {
    if (saved === undefined) delete process.env.SHIPCLOCK_GITHUB_RUN_LIST_LAG_SECONDS;
    else process.env.SHIPCLOCK_GITHUB_RUN_LIST_LAG_SECONDS = saved;
    await fake.close();
  });

  test('the checker itself catches drift (extra member, missing required member, undeclared body, missing header)', () => {
    const headers = Object.fromEntries([...RATE_LIMIT_HEADERS.map((h) => [h, '1']), ['content-type', 'application/json']]);
    const ok = { method: 'POST', route: '/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', status: 200, headers, body: { workflow_run_id: 1, run_url: 'https://api.github.com/x', html_url: 'https://github.com/x' } };
    assert.deepEqual(checkGhResponse(api, ajv, ok), []);
    const errs = checkGhResponse(api, ajv, { ...ok, body: { run_id: 1, run_url: 'https://api.github.com/x', html_url: 'https://github.com/x' } });
    assert.ok(errs.some((e) => e.includes("must have required property 'workflow_run_id'")), errs.join('\n'));
    assert.ok(errs.some((e) => e.includes('.run_id: not declared')), errs.join('\n'));
    const e204 = checkGhResponse(api, ajv, { ...ok, status: 204, headers: { 'content-type': 'application/json' }, body: {} });
    assert.ok(e204.some((e) => e.includes('declares no body')), e204.join('\n'));
    assert.ok(e204.some((e) => e.includes('header x-ratelimit-reset')), e204.join('\n'));
    const e403 = checkGhResponse(api, ajv, { ...ok, status: 403, body: { error: 'rate limited' } });
    assert.ok(e403.some((e) => e.includes('.error: not declared')), e403.join('\n'));
  });

  test('every answer the fake gave across the provider scenarios matches the OpenAPI schemas', async () => {
    const creds = { provider: 'github' as const, token: fake.token, api_url: fake.url };
    fake.addWorkflow('acme/web', 'deploy.yml', FULL_WORKFLOW);
    fake.addWorkflow('acme/bare', 'ship.yml', BARE_WORKFLOW);
    const target = { type: 'github_actions' as const, repository: 'acme/web', workflow: 'deploy.yml', ref: 'main', poll_interval_seconds: 1 };
    const bare = { ...target, repository: 'acme/bare', workflow: 'ship.yml' };
    const ctx = (t: typeof target) => ({ ...ctxFor(t, creds), deployment: { ...ctxFor(t, creds).deployment, id: `spec-${Math.random().toString(36).slice(2)}` } });
    assert.equal((await drive(githubActionsProvider, ctx(target))).kind, 'succeeded');
    fake.failNextRun('Push image');
    assert.equal((await drive(githubActionsProvider, ctx(target))).kind, 'failed');
    // cancel a running run (202), then again once it completed (409)
    const started = await githubActionsProvider.start(ctx(target));
    assert.equal(started.kind, 'follow');
    await githubActionsProvider.cancel!({ ...ctx(target), ref: (started as any).ref });
    const cancelled = await githubActionsProvider.poll!({ ...ctx(target), ref: (started as any).ref });
    assert.ok(cancelled.kind === 'failed' && /was cancelled/.test(cancelled.error), JSON.stringify(cancelled));
    await githubActionsProvider.cancel!({ ...ctx(target), ref: (started as any).ref });
    // a server before return_run_details (204, then the runs list), and one that refuses it (422)
    fake.legacyDispatch = true;
    assert.equal((await drive(githubActionsProvider, ctx(bare))).kind, 'succeeded');
    fake.legacyDispatch = false;
    fake.rejectRunDetails = true;
    assert.equal((await drive(githubActionsProvider, ctx(target))).kind, 'succeeded');
    fake.rejectRunDetails = false;
    // recover() lists runs; rollback dispatches action: rollback
    await githubActionsProvider.recover!(ctx(target));
    assert.equal((await githubActionsProvider.rollback!(ctx(target))).kind, 'follow');
    for (const err of [{ kind: 'rate_limit' }, { kind: 'secondary_rate_limit', status: 403, retryAfter: 2 }, { kind: 'secondary_rate_limit', status: 429, retryAfter: 2 },
      { kind: 'status', status: 500 }, { kind: 'status', status: 503 }, { kind: 'status', status: 403 }, { kind: 'status', status: 404 }] as const) {
      fake.injectErrors(err as any, 1);
      await githubActionsProvider.start(ctx(target));
    }
    await githubActionsProvider.start(ctxFor(target, { ...creds, token: 'wrong' }));
    await githubActionsProvider.start(ctx({ ...target, repository: 'acme/none' }));
    await githubActionsProvider.start(ctx({ ...target, ref: 'nope' }));

    const seen = new Set(fake.responses.map((r) => `${r.method} ${r.route} ${r.status}`));
    for (const want of ['POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches 200', 'POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches 204',
      'POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches 422', 'GET /repos/{owner}/{repo}/actions/workflows/{workflow_id} 200',
      'GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs 200', 'GET /repos/{owner}/{repo}/actions/runs/{run_id} 200',
      'GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs 200', 'GET /repos/{owner}/{repo}/contents/{path} 200', 'GET /repos/{owner}/{repo}/contents/{path} 404',
      'POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel 202', 'POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel 409',
      'GET /repos/{owner}/{repo}/actions/workflows/{workflow_id} 401', 'GET /repos/{owner}/{repo}/actions/workflows/{workflow_id} 403',
      'GET /repos/{owner}/{repo}/actions/workflows/{workflow_id} 404', 'GET /repos/{owner}/{repo}/actions/workflows/{workflow_id} 429',
      'GET /repos/{owner}/{repo}/actions/workflows/{workflow_id} 500', 'GET /repos/{owner}/{repo}/actions/workflows/{workflow_id} 503']) {
      assert.ok(seen.has(want), `scenario missing: ${want}\nseen: ${[...seen].join('\n')}`);
    }
    const conclusions = new Set(fake.responses.map((r: any) => r.body?.conclusion).filter(Boolean));
    for (const c of ['success', 'failure', 'cancelled']) assert.ok(conclusions.has(c), `no ${c} seen`);
    assert.ok(fake.responses.some((r) => r.status === 403 && r.headers['x-ratelimit-remaining'] === '0'));
    assert.ok(fake.responses.some((r) => r.status === 429 && r.headers['retry-after'] === '2'));

    const problems = fake.responses.flatMap((r) => checkGhResponse(api, ajv, r));
    assert.deepEqual(problems, []);
  });

  test('the provider sends bodies and query parameters its operations accept', () => {
    const dispatchOp = api.paths['/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches'].post;
    const schema = dispatchOp.requestBody.content['application/json'].schema;
    const validate = ajv.compile(schema);
    const dispatches = fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/dispatches'));
    assert.ok(dispatches.length > 0);
    for (const r of dispatches) {
      assert.ok(validate(r.body), JSON.stringify(validate.errors));
      assert.deepEqual(undeclared(schema, r.body, 'dispatch'), []);
      for (const v of Object.values(r.body?.inputs ?? {})) assert.equal(typeof v, 'string', 'inputs are strings');
    }
    const routes: [RegExp, string][] = [
      [/\/actions\/workflows\/[^/]+\/runs$/, '/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs'],
      [/\/actions\/runs\/\d+\/jobs$/, '/repos/{owner}/{repo}/actions/runs/{run_id}/jobs'],
      [/\/contents\//, '/repos/{owner}/{repo}/contents/{path}'],
    ];
    for (const r of fake.requests.filter((x) => x.method === 'GET')) {
      const u = new URL(r.path, 'http://x');
      const route = routes.find(([re]) => re.test(u.pathname))?.[1];
      if (!route) continue;
      const declared = new Set((api.paths[route].get.parameters ?? []).filter((p: any) => p.in === 'query').map((p: any) => p.name));
      for (const k of u.searchParams.keys()) assert.ok(declared.has(k), `${route}: query parameter ${k} is not declared (${[...declared].join(', ')})`);
    }
    assert.ok(fake.requests.every((r) => r.headers['x-github-api-version'] === '2022-11-28'), 'every request names the API version');
  });
});

const STATUS_SCHEMA = 'io.k8s.apimachinery.pkg.apis.meta.v1.Status';
const K8S_KINDS = { deployments: 'io.k8s.api.apps.v1.Deployment', statefulsets: 'io.k8s.api.apps.v1.StatefulSet', daemonsets: 'io.k8s.api.apps.v1.DaemonSet' } as const;

function checkKubeResponse(api: any, ajv: Ajv, r: { method: string; route: string; status: number; headers: Record<string, string>; body: unknown }): string[] {
  const op = api.paths[r.route]?.[r.method.toLowerCase()];
  if (!op) return [`${r.method} ${r.route}: no such operation in the OpenAPI document`];
  if (!String(r.headers['content-type'] ?? '').startsWith('application/json')) return [`${r.route} ${r.status}: content-type ${r.headers['content-type']}`];
  let schema: Schema;
  if (r.status >= 200 && r.status < 300) {
    schema = op.responses[String(r.status)]?.content?.['application/json']?.schema;
    if (!schema) return [`${r.method} ${r.route}: status ${r.status} is not declared`];
  } else {
    if (r.status === 401 && !op.responses['401']) return [`${r.method} ${r.route}: 401 is not declared`];
    schema = api.components.schemas[STATUS_SCHEMA];
  }
  const errs: string[] = [];
  const validate = ajv.compile(schema);
  if (!validate(r.body)) {
    for (const e of validate.errors ?? []) errs.push(`${r.method} ${r.route} ${r.status}: ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
  }
  undeclared(schema, r.body, `${r.method} ${r.route} ${r.status}`, errs);
  const body = r.body as Record<string, any>;
  if (r.status >= 400 && (body.kind !== 'Status' || body.status !== 'Failure' || body.code !== r.status)) errs.push(`${r.route} ${r.status}: not a Failure Status with code ${r.status}`);
  return errs;
}

describe('Kubernetes fake vs the apps/v1 OpenAPI v3 document', () => {
  let fake: KubernetesFake;
  let api: any;
  let ajv: Ajv;

  before(async () => {
    api = await SwaggerParser.dereference(K8S_APPS);
    ajv = newAjv();
    for (const f of ['int-or-string', 'byte', 'double']) ajv.addFormat(f, true);
    fake = await startKubernetesFake();
  });
  after(() => fake.close());

  const creds = () => ({ provider: 'kubernetes' as const, kubeconfig: fake.kubeconfig() });
  const target = (t: Partial<KubernetesTarget> & { name: string }): KubernetesTarget => ({ type: 'kubernetes', namespace: 'spec', ...t });

  test('the checker itself catches drift (extra member, wrong type, a non-Status error body)', () => {
    const base = { method: 'GET', route: '/apis/apps/v1/namespaces/{namespace}/deployments/{name}', status: 200, headers: { 'content-type': 'application/json' } };
    const ok = { kind: 'Deployment', apiVersion: 'apps/v1', metadata: { name: 'a', generation: 2 }, spec: { selector: {}, template: {} }, status: { observedGeneration: 2 } };
    assert.deepEqual(checkKubeResponse(api, ajv, { ...base, body: ok }), []);
    const errs = checkKubeResponse(api, ajv, { ...base, body: { ...ok, status: { observedGeneration: 'two', rolloutPhase: 'done' } } });
    assert.ok(errs.some((e) => e.includes('/status/observedGeneration must be integer')), errs.join('\n'));
    assert.ok(errs.some((e) => e.includes('.status.rolloutPhase: not declared')), errs.join('\n'));
    const e2 = checkKubeResponse(api, ajv, { ...base, status: 404, body: { error: 'not found' } });
    assert.ok(e2.some((e) => e.includes('.error: not declared')), e2.join('\n'));
    assert.ok(e2.some((e) => e.includes('not a Failure Status')), e2.join('\n'));
  });

  test('every answer the fake gave across the provider scenarios matches the document', async () => {
    const c = creds();
    fake.addWorkload('Deployment', 'spec', 'api', { api: 'api:1' });
    fake.addWorkload('StatefulSet', 'spec', 'db', { db: 'postgres:16' });
    fake.addWorkload('DaemonSet', 'spec', 'agent', { agent: 'agent:1' });
    assert.equal((await drive(kubernetesProvider, ctxFor(target({ name: 'api', image: 'api:2' }), c))).kind, 'succeeded');
    assert.equal((await drive(kubernetesProvider, ctxFor(target({ name: 'api' }), c))).kind, 'succeeded');
    assert.equal((await drive(kubernetesProvider, ctxFor(target({ name: 'db', kind: 'StatefulSet', image: 'postgres:17' }), c))).kind, 'succeeded');
    assert.equal((await drive(kubernetesProvider, ctxFor(target({ name: 'agent', kind: 'DaemonSet' }), c))).kind, 'succeeded');
    fake.failNextRollout();
    const failed = await drive(kubernetesProvider, ctxFor(target({ name: 'api', image: 'api:bad' }), c));
    assert.equal(failed.kind, 'failed');
    const rb = await kubernetesProvider.rollback!({ ...ctxFor(target({ name: 'api', image: 'api:bad' }), c), ref: failed.ref ?? null });
    assert.equal(rb.kind, 'follow');
    for (const status of [403, 404, 409, 422, 429, 500, 503] as const) {
      fake.injectErrors({ status, ...(status === 429 ? { retryAfter: 2 } : {}) });
      await kubernetesProvider.start(ctxFor(target({ name: 'api', image: 'api:3' }), c));
    }
    await kubernetesProvider.start(ctxFor(target({ name: 'api', image: 'api:3' }), { provider: 'kubernetes', kubeconfig: fake.kubeconfig({ token: 'wrong' }) }));
    await kubernetesProvider.start(ctxFor(target({ name: 'missing', image: 'x:1' }), c));

    const seen = new Set(fake.responses.map((r) => `${r.method} ${r.route} ${r.status}`));
    const D = '/apis/apps/v1/namespaces/{namespace}/deployments/{name}';
    for (const want of [`GET ${D} 200`, `PATCH ${D} 200`, 'PATCH /apis/apps/v1/namespaces/{namespace}/statefulsets/{name} 200',
      'PATCH /apis/apps/v1/namespaces/{namespace}/daemonsets/{name} 200', `GET ${D} 401`, `GET ${D} 403`, `GET ${D} 404`, `GET ${D} 409`,
      `GET ${D} 422`, `GET ${D} 429`, `GET ${D} 500`, `GET ${D} 503`]) {
      assert.ok(seen.has(want), `scenario missing: ${want}\nseen: ${[...seen].join('\n')}`);
    }
    const reasons = new Set(fake.responses.flatMap((r: any) => (r.body.status?.conditions ?? []).map((x: any) => x.reason)));
    for (const want of ['ReplicaSetUpdated', 'NewReplicaSetAvailable', 'ProgressDeadlineExceeded']) assert.ok(reasons.has(want), `no ${want} seen`);
    assert.ok(fake.responses.some((r) => r.status === 429 && r.headers['retry-after'] === '2'));

    const problems = fake.responses.flatMap((r) => checkKubeResponse(api, ajv, r));
    assert.deepEqual(problems, []);
  });

  test('the provider sends strategic merge patches that name only members of the workload schema', () => {
    const patches = fake.requests.filter((r) => r.method === 'PATCH' && r.authorized);
    assert.ok(patches.length >= 5);
    for (const r of patches) {
      assert.equal(r.contentType, 'application/strategic-merge-patch+json');
      const plural = /\/(deployments|statefulsets|daemonsets)\//.exec(r.path)![1] as keyof typeof K8S_KINDS;
      assert.deepEqual(undeclared(api.components.schemas[K8S_KINDS[plural]], r.body, `patch ${plural}`), []);
    }
    const ops = api.paths['/apis/apps/v1/namespaces/{namespace}/deployments/{name}'].patch.requestBody.content;
    assert.ok(ops['application/strategic-merge-patch+json'] && ops['application/merge-patch+json'], 'the document accepts both patch types');
  });
});
