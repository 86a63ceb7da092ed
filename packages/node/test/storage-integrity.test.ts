// The integrity root of a node's storage: the cluster key when set, else a random root wrapped by
// the KMS provider (local master key, or AWS KMS through moto_server) and kept only wrapped in the
// data dir. The same configuration must always give the same keys; another key must not.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Integrity } from '@coffer/state';
import { startMoto, type Moto } from '../../crypto/test/helpers/moto.js';
import { loadConfig } from '../src/config.js';
import { INTEGRITY_ROOT_FILE, loadStorageIntegrity, previousIntegrity } from '../src/storage-integrity.js';

const key = (): string => randomBytes(32).toString('base64');
let dir: string;
const made: Integrity[] = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'coffer-root-'));
});
afterEach(() => {
  for (const i of made.splice(0)) i.destroy();
  rmSync(dir, { recursive: true, force: true });
});

function config(env: Record<string, string>) {
  return loadConfig({ COFFER_NODE_ID: 'n1', COFFER_DATA_DIR: dir, ...env }, {});
}

async function load(env: Record<string, string>, create = true, rootFile?: string): Promise<Integrity> {
  const i = await loadStorageIntegrity(config(env), { create, rootFile });
  made.push(i);
  return i;
}

/** Whether two integrity objects hold the same record and snapshot keys. */
function same(a: Integrity, b: Integrity): boolean {
  const v = randomBytes(40);
  return b.openRecord('mtci', a.sealRecord('mtci', v)) !== null && b.verifySnapshotTag(v, a.snapshotTag(v));
}

test('from the cluster key: the same key gives the same keys, another key others; no file is written', async () => {
  const k = key();
  const a = await load({ COFFER_CLUSTER_KEY: k });
  const b = await load({ COFFER_CLUSTER_KEY: k, COFFER_LOCAL_MASTER_KEY: key() });
  expect(same(a, b)).toBe(true);
  expect(same(a, await load({ COFFER_CLUSTER_KEY: key() }))).toBe(false);
  expect(existsSync(path.join(dir, INTEGRITY_ROOT_FILE))).toBe(false);
  // record and snapshot keys are distinct derivations
  const v = randomBytes(40);
  expect(Buffer.from(a.sealRecord('', v).subarray(40)).equals(Buffer.from(a.snapshotTag(Buffer.concat([Buffer.alloc(4), v]))))).toBe(false);
  const prev = previousIntegrity(config({ COFFER_CLUSTER_KEY: key(), COFFER_PREVIOUS_CLUSTER_KEY: k }));
  expect(prev !== undefined && same(a, prev)).toBe(true);
  prev?.destroy();
});

test('local mode without a cluster key: a root wrapped by the master key, created once, re-wrapped after a ring rotation', async () => {
  const k1 = key();
  const a = await load({ COFFER_LOCAL_MASTER_KEY: k1 });
  const file = path.join(dir, INTEGRITY_ROOT_FILE);
  const stored = JSON.parse(readFileSync(file, 'utf8'));
  expect(Object.keys(stored).sort()).toEqual(['kmsKeyId', 'v', 'wrapped']);
  expect(same(a, await load({ COFFER_LOCAL_MASTER_KEY: k1 }))).toBe(true);
  // another master key cannot unwrap it
  await expect(load({ COFFER_LOCAL_MASTER_KEY: key() })).rejects.toThrow();
  // rotation: new key first, old key kept → re-wrapped onto the new key; then the old key can go
  const k2 = key();
  expect(same(a, await load({ COFFER_LOCAL_MASTER_KEY: `${k2},${k1}` }))).toBe(true);
  expect(JSON.parse(readFileSync(file, 'utf8')).kmsKeyId).not.toBe(stored.kmsKeyId);
  expect(same(a, await load({ COFFER_LOCAL_MASTER_KEY: k2 }))).toBe(true);
});

test('offline tools never create a root: no file, or no key source at all, is an error; --integrity-root copies one in', async () => {
  const k1 = key();
  await expect(load({ COFFER_LOCAL_MASTER_KEY: k1 }, false)).rejects.toThrow(/does not exist/);
  await expect(load({}, false)).rejects.toThrow(/COFFER_CLUSTER_KEY/);
  const a = await load({ COFFER_LOCAL_MASTER_KEY: k1 });
  const old = path.join(dir, INTEGRITY_ROOT_FILE);
  const elsewhere = mkdtempSync(path.join(tmpdir(), 'coffer-root-new-'));
  try {
    const b = await loadStorageIntegrity(loadConfig({ COFFER_NODE_ID: 'n1', COFFER_DATA_DIR: elsewhere, COFFER_LOCAL_MASTER_KEY: k1 }, {}), { create: false, rootFile: old });
    made.push(b);
    expect(same(a, b)).toBe(true);
    expect(existsSync(path.join(elsewhere, INTEGRITY_ROOT_FILE))).toBe(true);
  } finally {
    rmSync(elsewhere, { recursive: true, force: true });
  }
});

describe('aws mode (moto_server)', () => {
  let moto: Moto;
  let keyArn: string;
  const saved = { ...process.env };

  beforeAll(async () => {
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'us-east-1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
    moto = await startMoto();
    const r = await fetch(moto.endpoint, {
      method: 'POST',
      // moto routes by the service in the credential scope; it does not check the signature.
      headers: {
        'x-amz-target': 'TrentService.CreateKey',
        'content-type': 'application/x-amz-json-1.1',
        authorization: 'AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00',
      },
      body: JSON.stringify({ Description: 'coffer integrity root test' }),
    });
    keyArn = ((await r.json()) as { KeyMetadata: { Arn: string } }).KeyMetadata.Arn;
  }, 60_000);
  afterAll(async () => {
    process.env = saved;
    await moto?.stop();
  }, 30_000);

  test('a single node without a cluster key: the root is generated through KMS and kept only wrapped', async () => {
    const env = { COFFER_KMS_MODE: 'aws', COFFER_KMS_KEY_ID: keyArn, COFFER_KMS_ENDPOINT: moto.endpoint };
    const a = await load(env);
    const stored = JSON.parse(readFileSync(path.join(dir, INTEGRITY_ROOT_FILE), 'utf8'));
    expect(stored.kmsKeyId).toBe(keyArn);
    expect(same(a, await load(env))).toBe(true);
    // a local master key cannot open what KMS wrapped
    await expect(load({ COFFER_LOCAL_MASTER_KEY: key() })).rejects.toThrow();
  });
});
