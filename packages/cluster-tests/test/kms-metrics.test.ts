/**
 * The KMS metrics a running node exports move when it calls the KMS (a review found them wired to
 * misspelt hook names behind a cast, so `coffer_kms_*` never moved in production while a unit test
 * that called the metric objects directly stayed green). A real node in AWS mode against the KMS
 * emulator (moto_server, preinstalled; start-up failure fails the test, never skips it).
 */
import { TestCluster, type NodeHandle } from '../src/harness';
import { startMoto, type Moto } from '../../crypto/test/helpers/moto';

jest.setTimeout(120_000);

async function createKey(endpoint: string): Promise<string> {
  // moto does not check request signatures: a plain JSON-protocol call is enough.
  const r = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.CreateKey', authorization: 'AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=0' },
    body: '{}',
  });
  const body = (await r.json()) as { KeyMetadata: { KeyId: string } };
  return body.KeyMetadata.KeyId;
}

describe('KMS metrics of a running node (AWS mode, KMS emulator)', () => {
  let moto: Moto;
  let cluster: TestCluster;

  beforeAll(async () => {
    moto = await startMoto();
    const keyId = await createKey(moto.endpoint);
    cluster = new TestCluster({
      size: 1,
      env: {
        COFFER_KMS_MODE: 'aws',
        COFFER_KMS_KEY_ID: keyId,
        COFFER_KMS_ENDPOINT: moto.endpoint,
        COFFER_LOCAL_MASTER_KEY: '',
        COFFER_DEK_CACHE_TTL_SECS: '0',
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        AWS_REGION: 'us-east-1',
      },
    });
    await cluster.start();
    await cluster.ready();
  });
  afterAll(async () => {
    await cluster?.stop();
    await moto?.stop();
  });

  test('a write and a read move coffer_kms_request_duration_seconds; a failing KMS moves coffer_kms_errors_total', async () => {
    const n = cluster.nodes[0] as NodeHandle;
    const count = (): Promise<number> => cluster.metric(n, 'coffer_kms_request_duration_seconds_count');
    const before = await count();
    expect((await cluster.http(n, 'PUT', '/v1/secrets/kms/metric', { value: 'v' })).status).toBe(200);
    const afterWrite = await count();
    expect(afterWrite).toBeGreaterThan(before);
    const read = await cluster.http(n, 'GET', '/v1/secrets/kms/metric', undefined, null);
    expect([read.status, read.body.value]).toEqual([200, 'v']);
    expect(await count()).toBeGreaterThan(afterWrite);
    const text = await (await fetch(`${n.api}/metrics`)).text();
    expect(text).toMatch(/coffer_kms_request_duration_seconds_count\{op="GenerateDataKey"\} [1-9]/);
    expect(text).toMatch(/coffer_kms_request_duration_seconds_count\{op="Decrypt"\} [1-9]/);

    expect(await cluster.metric(n, 'coffer_kms_errors_total')).toBe(0);
    await moto.stop();
    const w = await cluster.http(n, 'PUT', '/v1/secrets/kms/down', { value: 'v' });
    expect(w.status).toBe(503);
    expect(await cluster.metric(n, 'coffer_kms_errors_total')).toBeGreaterThan(0);
  });
});
