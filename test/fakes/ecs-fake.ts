/**
 * A local Amazon ECS that speaks the real wire protocol (awsJson1_1): `POST /` with
 * `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Operation>`, JSON bodies of content-type
 * `application/x-amz-json-1.1`, timestamps as epoch seconds, errors as
 * `{"__type": "com.amazonaws.ecs#<Name>", "message": ...}` with 400 (client) or 500 (server).
 * Point @aws-sdk/client-ecs at it with AWS_ENDPOINT_URL_ECS=<url>.
 *
 * It keeps clusters, services, task definitions and deployments in memory. A rollout advances one
 * step per DescribeServices of its service and ends after `rolloutPolls` of them, COMPLETED, or
 * FAILED when `failNextRollout()` was called. Every response is recorded in `responses` so
 * test/fakes.spec-check.test.ts can check it against the Smithy model.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export const ECS_TARGET_PREFIX = 'AmazonEC2ContainerServiceV20141113.';
const ERR_NS = 'com.amazonaws.ecs#';
const ACCOUNT = '123456789012';

type Json = Record<string, any>;

export interface RecordedResponse {
  op: string;
  status: number;
  body: Json;
}

export interface FakeTaskDefinition {
  family: string;
  containerDefinitions: Json[];
  [k: string]: unknown;
}

interface FakeDeployment {
  id: string;
  status: 'PRIMARY' | 'ACTIVE' | 'INACTIVE';
  taskDefinition: string;
  desiredCount: number;
  pendingCount: number;
  runningCount: number;
  failedTasks: number;
  createdAt: number;
  updatedAt: number;
  launchType: string;
  rolloutState: 'COMPLETED' | 'FAILED' | 'IN_PROGRESS';
  rolloutStateReason: string;
  /** DescribeServices calls seen while in progress. */
  steps: number;
  failWith?: string;
}

interface FakeService {
  cluster: string;
  name: string;
  arn: string;
  status: 'ACTIVE' | 'DRAINING' | 'INACTIVE';
  taskDefinition: string;
  desiredCount: number;
  createdAt: number;
  deployments: FakeDeployment[];
  deploymentController: DeploymentControllerType;
}

/** ECS's deploymentController.type: ECS (rolling update), CODE_DEPLOY (blue/green) or EXTERNAL (task sets). */
export type DeploymentControllerType = 'ECS' | 'CODE_DEPLOY' | 'EXTERNAL';

export type InjectedError = 'throttle' | 'server' | 'accessDenied' | 'clusterNotFound' | 'serviceNotFound' | 'unrecognizedClient';

export interface EcsFake {
  url: string;
  region: string;
  /** Every answer sent, in order. */
  responses: RecordedResponse[];
  /** Every request body received, per operation. */
  requests: { op: string; body: Json; headers: http.IncomingHttpHeaders }[];
  /** How many times `op` was called (also the ones answered with an injected error). */
  count(op: string): number;
  /** Adds a service running a new task definition (registered as revision 1 of its family). */
  addService(opts: { cluster?: string; service: string; taskDefinition: FakeTaskDefinition; tags?: Json[]; desiredCount?: number; deploymentController?: DeploymentControllerType }): { serviceArn: string; taskDefinitionArn: string };
  /**
   * How UpdateService treats a service whose controller is not ECS: 'ecs' (default) answers as
   * ECS does, InvalidParameterException for a task-definition change or a forced new deployment;
   * 'moto' as moto does, taking the change and answering with no deployments (no PRIMARY).
   */
  nonEcsControllerBehaviour: 'ecs' | 'moto';
  /** The next UpdateService takes effect but answers with no deployments (so no PRIMARY). */
  answerWithoutDeploymentsNext(): void;
  /** Registers a task definition revision (e.g. one a rollback goes back to). */
  registerTaskDefinition(td: FakeTaskDefinition): string;
  /** Removes a service: DescribeServices then reports it MISSING, UpdateService ServiceNotFound. */
  removeService(cluster: string, service: string): void;
  /** The next rollout started ends FAILED with this reason (circuit breaker). */
  failNextRollout(reason?: string): void;
  /** The next `n` calls of `op` (or of any operation with '*') answer with this error. */
  injectErrors(kind: InjectedError, n?: number, op?: string): void;
  /** How many DescribeServices calls a rollout takes to end (default 2). */
  rolloutPolls: number;
  /** When set, requests signed with another access key id get UnrecognizedClientException. */
  acceptedAccessKeyId: string | undefined;
  /** The current deployments of a service (the fake's state, for assertions). */
  deployments(cluster: string, service: string): Json[];
  /** A task definition as stored (by ARN or family:revision). */
  taskDefinition(ref: string): { taskDefinition: Json; tags: Json[] } | undefined;
  close(): Promise<void>;
}

const nowSeconds = () => Date.now() / 1000;

function shortName(nameOrArn: string): string {
  return nameOrArn.startsWith('arn:') ? nameOrArn.slice(nameOrArn.lastIndexOf('/') + 1) : nameOrArn;
}

class AwsError extends Error {
  constructor(readonly type: string, message: string, readonly status = 400) {
    super(message);
  }
}

export async function startEcsFake(opts: { region?: string } = {}): Promise<EcsFake> {
  const region = opts.region ?? 'us-east-1';
  const services = new Map<string, FakeService>(); // key cluster/name
  const clusters = new Set<string>();
  const taskDefs = new Map<string, { taskDefinition: Json; tags: Json[] }>(); // by ARN
  const calls = new Map<string, number>();
  const responses: RecordedResponse[] = [];
  const requests: EcsFake['requests'] = [];
  let injected: { kind: InjectedError; n: number; op: string }[] = [];
  let failNext: string | undefined;
  let deploymentSeq = 0;
  let noDeploymentsInNextAnswer = false;

  const clusterArn = (c: string) => `arn:aws:ecs:${region}:${ACCOUNT}:cluster/${c}`;
  const key = (cluster: string, service: string) => `${shortName(cluster)}/${shortName(service)}`;

  function newDeploymentId(): string {
    deploymentSeq += 1;
    return `ecs-svc/${String(1_000_000_000_000_000_000n + BigInt(Date.now()) * 1000n + BigInt(deploymentSeq)).slice(0, 19)}`;
  }

  function register(input: Json): Json {
    const family = input.family;
    let revision = 1;
    for (const td of taskDefs.values()) if (td.taskDefinition.family === family) revision = Math.max(revision, td.taskDefinition.revision + 1);
    const arn = `arn:aws:ecs:${region}:${ACCOUNT}:task-definition/${family}:${revision}`;
    const { tags, ...rest } = input;
    const requires = rest.requiresCompatibilities ?? [];
    const taskDefinition: Json = {
      ...structuredClone(rest),
      taskDefinitionArn: arn,
      revision,
      status: 'ACTIVE',
      requiresAttributes: [{ name: 'com.amazonaws.ecs.capability.docker-remote-api.1.18' }],
      compatibilities: requires.includes('FARGATE') ? ['EC2', 'FARGATE'] : ['EC2'],
      registeredAt: nowSeconds(),
      registeredBy: `arn:aws:iam::${ACCOUNT}:user/deployer`,
    };
    taskDefs.set(arn, { taskDefinition, tags: structuredClone(tags ?? []) });
    return taskDefinition;
  }

  function findTaskDef(ref: string): { taskDefinition: Json; tags: Json[] } | undefined {
    if (taskDefs.has(ref)) return taskDefs.get(ref);
    const [family, rev] = ref.split(':');
    let best: { taskDefinition: Json; tags: Json[] } | undefined;
    for (const td of taskDefs.values()) {
      if (td.taskDefinition.family !== family) continue;
      if (rev !== undefined && String(td.taskDefinition.revision) !== rev) continue;
      if (!best || td.taskDefinition.revision > best.taskDefinition.revision) best = td;
    }
    return best;
  }

  function newDeployment(svc: FakeService, taskDefinition: string, settled: boolean): FakeDeployment {
    const t = nowSeconds();
    const id = newDeploymentId();
    const d: FakeDeployment = {
      id,
      status: 'PRIMARY',
      taskDefinition,
      desiredCount: svc.desiredCount,
      pendingCount: 0,
      runningCount: settled ? svc.desiredCount : 0,
      failedTasks: 0,
      createdAt: t,
      updatedAt: t,
      launchType: 'FARGATE',
      rolloutState: settled ? 'COMPLETED' : 'IN_PROGRESS',
      rolloutStateReason: settled ? `ECS deployment ${id} completed.` : `ECS deployment ${id} in progress.`,
      steps: 0,
    };
    if (!settled && failNext !== undefined) {
      d.failWith = failNext;
      failNext = undefined;
    }
    return d;
  }

  /** One DescribeServices worth of progress for an in-flight rollout. */
  function advance(svc: FakeService): void {
    const d = svc.deployments.find((x) => x.status === 'PRIMARY');
    if (!d || d.rolloutState !== 'IN_PROGRESS') return;
    d.steps += 1;
    d.updatedAt = nowSeconds();
    if (d.steps < fake.rolloutPolls) {
      d.pendingCount = Math.max(0, d.desiredCount - d.runningCount);
      d.runningCount = Math.min(d.desiredCount, d.runningCount + 1);
      d.pendingCount = d.desiredCount - d.runningCount;
      return;
    }
    if (d.failWith !== undefined) {
      d.rolloutState = 'FAILED';
      d.rolloutStateReason = d.failWith;
      d.failedTasks = d.desiredCount;
      d.runningCount = 0;
      d.pendingCount = 0;
      return;
    }
    d.rolloutState = 'COMPLETED';
    d.rolloutStateReason = `ECS deployment ${d.id} completed.`;
    d.runningCount = d.desiredCount;
    d.pendingCount = 0;
    // The old deployments drained away.
    svc.deployments = svc.deployments.filter((x) => x === d);
  }

  function serviceJson(svc: FakeService): Json {
    return {
      serviceArn: svc.arn,
      serviceName: svc.name,
      clusterArn: clusterArn(svc.cluster),
      loadBalancers: [],
      serviceRegistries: [],
      status: svc.status,
      desiredCount: svc.desiredCount,
      runningCount: svc.deployments.reduce((n, d) => n + d.runningCount, 0),
      pendingCount: svc.deployments.reduce((n, d) => n + d.pendingCount, 0),
      launchType: 'FARGATE',
      platformVersion: 'LATEST',
      platformFamily: 'Linux',
      taskDefinition: svc.taskDefinition,
      deploymentConfiguration: {
        deploymentCircuitBreaker: { enable: true, rollback: false },
        maximumPercent: 200,
        minimumHealthyPercent: 100,
      },
      // A service whose controller is not ECS has task sets, not service deployments.
      deployments: svc.deploymentController === 'ECS' ? svc.deployments.map(({ steps: _s, failWith: _f, ...d }) => ({ ...d })) : [],
      events: [],
      createdAt: svc.createdAt,
      placementConstraints: [],
      placementStrategy: [],
      schedulingStrategy: 'REPLICA',
      deploymentController: { type: svc.deploymentController },
      createdBy: `arn:aws:iam::${ACCOUNT}:user/deployer`,
      enableECSManagedTags: false,
      propagateTags: 'NONE',
      enableExecuteCommand: false,
      availabilityZoneRebalancing: 'DISABLED',
    };
  }

  function getService(cluster: string | undefined, service: string): FakeService {
    const c = shortName(cluster ?? 'default');
    if (!clusters.has(c)) throw new AwsError('ClusterNotFoundException', 'Cluster not found.');
    const svc = services.get(key(c, service));
    if (!svc || svc.status === 'INACTIVE') throw new AwsError('ServiceNotFoundException', 'Service not found.');
    return svc;
  }

  const ops: Record<string, (body: Json) => Json> = {
    DescribeServices(body) {
      const c = shortName(body.cluster ?? 'default');
      if (!clusters.has(c)) throw new AwsError('ClusterNotFoundException', 'Cluster not found.');
      if (!Array.isArray(body.services) || body.services.length === 0) {
        throw new AwsError('InvalidParameterException', 'Services cannot be empty.');
      }
      const out: Json[] = [];
      const failures: Json[] = [];
      for (const name of body.services as string[]) {
        const svc = services.get(key(c, name));
        if (!svc) {
          failures.push({ arn: `arn:aws:ecs:${region}:${ACCOUNT}:service/${c}/${shortName(name)}`, reason: 'MISSING' });
          continue;
        }
        advance(svc);
        out.push(serviceJson(svc));
      }
      return { services: out, failures };
    },
    UpdateService(body) {
      const svc = getService(body.cluster, body.service);
      let td = svc.taskDefinition;
      if (body.taskDefinition !== undefined) {
        const found = findTaskDef(body.taskDefinition);
        if (!found) throw new AwsError('ClientException', 'TaskDefinition not found.');
        td = found.taskDefinition.taskDefinitionArn;
      }
      const changes = td !== svc.taskDefinition || body.forceNewDeployment === true;
      if (svc.deploymentController !== 'ECS' && changes) {
        if (fake.nonEcsControllerBehaviour === 'ecs') {
          throw new AwsError('InvalidParameterException', svc.deploymentController === 'CODE_DEPLOY'
            ? 'Unable to update task definition on services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment.'
            : 'Unable to update task definition on services with a EXTERNAL deployment controller. Use CreateTaskSet to deploy a new task definition.');
        }
        // moto: the change is taken, no deployment is made or shown.
        svc.taskDefinition = td;
        return { service: serviceJson(svc) };
      }
      if (typeof body.desiredCount === 'number') svc.desiredCount = body.desiredCount;
      if (changes) {
        for (const d of svc.deployments) if (d.status === 'PRIMARY') d.status = 'ACTIVE';
        svc.taskDefinition = td;
        svc.deployments.unshift(newDeployment(svc, td, false));
      }
      const out = serviceJson(svc);
      if (noDeploymentsInNextAnswer) {
        noDeploymentsInNextAnswer = false;
        out.deployments = [];
      }
      return { service: out };
    },
    DescribeTaskDefinition(body) {
      const found = typeof body.taskDefinition === 'string' ? findTaskDef(body.taskDefinition) : undefined;
      if (!found) throw new AwsError('ClientException', 'Unable to describe task definition.');
      const out: Json = { taskDefinition: structuredClone(found.taskDefinition) };
      if (Array.isArray(body.include) && body.include.includes('TAGS')) out.tags = structuredClone(found.tags);
      return out;
    },
    RegisterTaskDefinition(body) {
      if (typeof body.family !== 'string' || !/^[A-Za-z0-9_-]{1,255}$/.test(body.family)) {
        throw new AwsError('ClientException', 'Family contains invalid characters or is missing.');
      }
      if (!Array.isArray(body.containerDefinitions) || body.containerDefinitions.length === 0) {
        throw new AwsError('ClientException', 'Container list cannot be empty.');
      }
      // Stricter than ECS on purpose: a read-only member sent back means the caller copied blindly.
      for (const k of ['taskDefinitionArn', 'revision', 'status', 'requiresAttributes', 'compatibilities', 'registeredAt', 'registeredBy', 'deregisteredAt']) {
        if (k in body) throw new AwsError('ClientException', `Unexpected field ${k}.`);
      }
      const taskDefinition = register(body);
      const tags = taskDefs.get(taskDefinition.taskDefinitionArn)!.tags;
      return { taskDefinition, tags };
    },
  };

  function takeInjected(op: string): InjectedError | undefined {
    const i = injected.findIndex((x) => x.n > 0 && (x.op === '*' || x.op === op));
    if (i < 0) return undefined;
    injected[i].n -= 1;
    const kind = injected[i].kind;
    injected = injected.filter((x) => x.n > 0);
    return kind;
  }

  function injectedError(kind: InjectedError): AwsError {
    switch (kind) {
      case 'throttle': return new AwsError('ThrottlingException', 'Rate exceeded', 400);
      case 'server': return new AwsError('ServerException', 'Service Unavailable. Please try again later.', 500);
      case 'accessDenied': return new AwsError('AccessDeniedException', `User: arn:aws:iam::${ACCOUNT}:user/deployer is not authorized to perform this action`, 400);
      case 'clusterNotFound': return new AwsError('ClusterNotFoundException', 'Cluster not found.', 400);
      case 'serviceNotFound': return new AwsError('ServiceNotFoundException', 'Service not found.', 400);
      case 'unrecognizedClient': return new AwsError('UnrecognizedClientException', 'The security token included in the request is invalid.', 400);
    }
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const op = target.startsWith(ECS_TARGET_PREFIX) ? target.slice(ECS_TARGET_PREFIX.length) : '';
      const send = (status: number, body: Json) => {
        responses.push({ op, status, body });
        const text = JSON.stringify(body);
        res.writeHead(status, {
          'content-type': 'application/x-amz-json-1.1',
          'content-length': Buffer.byteLength(text),
          'x-amzn-requestid': `fake-${responses.length}`,
        });
        res.end(text);
      };
      const fail = (e: AwsError) => send(e.status, { __type: ERR_NS + e.type, message: e.message });
      if (req.method !== 'POST' || req.url !== '/') return fail(new AwsError('UnknownOperationException', 'Only POST / is served.'));
      if (!String(req.headers['content-type'] ?? '').startsWith('application/x-amz-json-1.1')) {
        return fail(new AwsError('SerializationException', 'Expected content-type application/x-amz-json-1.1.'));
      }
      calls.set(op, (calls.get(op) ?? 0) + 1);
      const handler = ops[op];
      if (!handler) return fail(new AwsError('UnknownOperationException', `Unknown operation ${target}`));
      let body: Json;
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
      } catch {
        return fail(new AwsError('SerializationException', 'Malformed JSON body.'));
      }
      requests.push({ op, body, headers: req.headers });
      // SigV4: `Credential=<access key id>/<date>/<region>/ecs/aws4_request`.
      const auth = String(req.headers.authorization ?? '');
      const m = /Credential=([^/]+)\/\d{8}\/([^/]+)\/ecs\/aws4_request/.exec(auth);
      if (!m) return fail(new AwsError('MissingAuthenticationTokenException', 'Missing Authentication Token'));
      if (fake.acceptedAccessKeyId !== undefined && m[1] !== fake.acceptedAccessKeyId) {
        return fail(injectedError('unrecognizedClient'));
      }
      const inj = takeInjected(op);
      if (inj) return fail(injectedError(inj));
      try {
        send(200, handler(body));
      } catch (err) {
        if (err instanceof AwsError) return fail(err);
        fail(new AwsError('ServerException', String(err), 500));
      }
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const fake: EcsFake = {
    url: `http://127.0.0.1:${port}`,
    region,
    responses,
    requests,
    rolloutPolls: 2,
    acceptedAccessKeyId: undefined,
    nonEcsControllerBehaviour: 'ecs',
    answerWithoutDeploymentsNext() {
      noDeploymentsInNextAnswer = true;
    },
    registerTaskDefinition(td) {
      return register(structuredClone(td)).taskDefinitionArn;
    },
    count: (op) => calls.get(op) ?? 0,
    addService({ cluster = 'default', service, taskDefinition, tags, desiredCount = 2, deploymentController = 'ECS' }) {
      const c = shortName(cluster);
      clusters.add(c);
      const td = register({ ...structuredClone(taskDefinition), tags: tags ?? [] });
      const svc: FakeService = {
        cluster: c,
        name: service,
        arn: `arn:aws:ecs:${region}:${ACCOUNT}:service/${c}/${service}`,
        status: 'ACTIVE',
        taskDefinition: td.taskDefinitionArn,
        desiredCount,
        createdAt: nowSeconds() - 86_400,
        deployments: [],
        deploymentController,
      };
      const first = newDeployment(svc, td.taskDefinitionArn, true);
      first.createdAt = first.updatedAt = svc.createdAt;
      svc.deployments.push(first);
      services.set(key(c, service), svc);
      return { serviceArn: svc.arn, taskDefinitionArn: td.taskDefinitionArn };
    },
    removeService(cluster, service) {
      services.delete(key(cluster, service));
    },
    failNextRollout(reason = 'ECS deployment circuit breaker: tasks failed to start.') {
      failNext = reason;
    },
    injectErrors(kind, n = 1, op = '*') {
      injected.push({ kind, n, op });
    },
    deployments(cluster, service) {
      const svc = services.get(key(cluster, service));
      return svc ? svc.deployments.map((d) => ({ ...d })) : [];
    },
    taskDefinition(ref) {
      const found = findTaskDef(ref);
      return found && structuredClone(found);
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  return fake;
}

/**
 * Everything the shared conformance suite needs for the ECS provider: a fake with one service,
 * the target and credential that reach it (AWS_ENDPOINT_URL_ECS is set until close()), and
 * one-line scenario controls.
 */
export async function ecsHarness() {
  const fake = await startEcsFake({ region: 'us-east-1' });
  const previous = process.env.AWS_ENDPOINT_URL_ECS;
  process.env.AWS_ENDPOINT_URL_ECS = fake.url;
  fake.addService({
    cluster: 'conformance', service: 'app',
    taskDefinition: { family: 'app', containerDefinitions: [{ name: 'app', image: 'app:1', essential: true }] },
  });
  return {
    fake,
    target: { type: 'ecs' as const, region: 'us-east-1', cluster: 'conformance', service: 'app', poll_interval_seconds: 1, timeout_seconds: 60 },
    credentials: { provider: 'aws' as const, access_key_id: 'AKIACONFORMANCE', secret_access_key: 'conformance-secret' },
    /** The next rollout ends FAILED with this reason. */
    failNext: (reason = 'ECS deployment circuit breaker: tasks failed to start.') => fake.failNextRollout(reason),
    /** The next call answers ThrottlingException (transient). */
    transientNext: () => fake.injectErrors('throttle', 1),
    /** The next call answers AccessDeniedException (permanent). */
    permanentNext: () => fake.injectErrors('accessDenied', 1),
    /** Rollouts stay IN_PROGRESS (for timeouts). */
    neverFinish: () => { fake.rolloutPolls = Number.MAX_SAFE_INTEGER; },
    /** How many rollouts were triggered (UpdateService calls that took effect). */
    triggers: () => fake.responses.filter((r) => r.op === 'UpdateService' && r.status === 200).length,
    async close() {
      if (previous === undefined) delete process.env.AWS_ENDPOINT_URL_ECS;
      else process.env.AWS_ENDPOINT_URL_ECS = previous;
      await fake.close();
    },
  };
}
