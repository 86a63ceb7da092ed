// COFFER_SEAL: the cross-variable rules of a sealed start (config/load.ts).
import { loadConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

const io = { readable: () => true, cwd: '/tmp/coffer-seal-config' };
const KEY = Buffer.alloc(32, 7).toString('base64');
const load = (env: Record<string, string>): ReturnType<typeof loadConfig> => loadConfig({ COFFER_NODE_ID: 'n1', ...env }, {}, io);

function refusal(env: Record<string, string>): { variable: string; message: string } {
  try {
    load(env);
  } catch (err) {
    if (err instanceof ConfigError) return { variable: err.variable, message: err.message };
    throw err;
  }
  throw new Error('expected a ConfigError');
}

test('COFFER_SEAL defaults to none; coffer dev settings keep working', () => {
  expect(load({}).seal).toBe('none');
  expect(load({ COFFER_LOCAL_MASTER_KEY: KEY }).seal).toBe('none');
});

test('shamir with a cluster key and local mode loads, without a master key and without the random-key warning', () => {
  const cfg = load({ COFFER_SEAL: 'shamir', COFFER_CLUSTER_KEY: KEY });
  expect(cfg.seal).toBe('shamir');
  expect(cfg.localMasterKeys).toBeUndefined();
  expect(cfg.warnings.join('\n')).not.toMatch(/RANDOM master key/);
});

test.each([
  ['no cluster key on one node', { COFFER_SEAL: 'shamir' }, 'COFFER_CLUSTER_KEY', /required with COFFER_SEAL=shamir/],
  ['aws mode', { COFFER_SEAL: 'shamir', COFFER_CLUSTER_KEY: KEY, COFFER_KMS_MODE: 'aws', COFFER_KMS_KEY_ID: 'alias/x' }, 'COFFER_KMS_MODE', /must be local/],
  ['a configured master key', { COFFER_SEAL: 'shamir', COFFER_CLUSTER_KEY: KEY, COFFER_LOCAL_MASTER_KEY: KEY }, 'COFFER_LOCAL_MASTER_KEY', /must not be set with COFFER_SEAL=shamir/],
  ['an unknown mode', { COFFER_SEAL: 'vault' }, 'COFFER_SEAL', /none|shamir/],
])('refused: %s', (_what, env, variable, message) => {
  const r = refusal(env);
  expect(r.variable).toBe(variable);
  expect(r.message).toMatch(message);
  // The master key is never echoed.
  expect(r.message).not.toContain(KEY);
});
