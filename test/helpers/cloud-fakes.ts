/**
 * The ECS and DigitalOcean fakes for the tests that go through the scheduler in process: both
 * started, the process environment pointing the providers at them (they read
 * AWS_ENDPOINT_URL_ECS and SHIPCLOCK_DIGITALOCEAN_API_URL when they call; the AWS SDK when it
 * builds its client), and an AWS and a DigitalOcean credential stored for them.
 */
import assert from 'node:assert/strict';
import { startDigitaloceanFake, type DigitaloceanFake } from '../fakes/digitalocean-fake.ts';
import { startEcsFake, type EcsFake } from '../fakes/ecs-fake.ts';
import type { TestServer } from './server.ts';

export interface CloudFakes {
  ecs: EcsFake;
  dof: DigitaloceanFake;
  /** Closes both and gives the environment back as it was. */
  close(): Promise<void>;
}

/** `awsKey`: the only access key the ECS fake accepts. */
export async function startCloudFakes(awsKey: { access_key_id: string }): Promise<CloudFakes> {
  const saved = { AWS_ENDPOINT_URL_ECS: process.env.AWS_ENDPOINT_URL_ECS, SHIPCLOCK_DIGITALOCEAN_API_URL: process.env.SHIPCLOCK_DIGITALOCEAN_API_URL };
  const ecs = await startEcsFake({ region: 'us-east-1' });
  const dof = await startDigitaloceanFake();
  ecs.acceptedAccessKeyId = awsKey.access_key_id;
  process.env.AWS_ENDPOINT_URL_ECS = ecs.url;
  process.env.SHIPCLOCK_DIGITALOCEAN_API_URL = dof.url;
  return {
    ecs,
    dof,
    async close() {
      await ecs.close();
      await dof.close();
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    },
  };
}

/** Stores the AWS key and the DigitalOcean fake's token as credentials; their ids. */
export async function storeCloudCredentials(s: TestServer, fakes: CloudFakes, awsKey: { access_key_id: string; secret_access_key: string }): Promise<{ aws: string; digitalocean: string }> {
  const a = await s.api('POST', '/v1/credentials', { name: 'aws', provider: 'aws', ...awsKey }, s.adminToken);
  assert.equal(a.status, 201, JSON.stringify(a.body));
  const d = await s.api('POST', '/v1/credentials', { name: 'digitalocean', provider: 'digitalocean', token: fakes.dof.token }, s.adminToken);
  assert.equal(d.status, 201, JSON.stringify(d.body));
  return { aws: a.body.id, digitalocean: d.body.id };
}
