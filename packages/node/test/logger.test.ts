import { Writable } from 'node:stream';
import { createLogger, REDACTED } from '../src/logger.js';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[]; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return { stream, text: () => chunks.join(''), lines: () => chunks.join('').trim().split('\n').map((l) => JSON.parse(l)) };
}

const TOKEN = 'cof_CANARY_RAW_TOKEN_0123456789';
const VALUE = 'CANARY-SECRET-VALUE-xyz';

describe('createLogger', () => {
  test('JSON lines with nodeId, level label and time', () => {
    const c = capture();
    const log = createLogger({ level: 'info', nodeId: 'n1', destination: c.stream });
    log.child({ requestId: 'r1' }).info({ route: '/v1/secrets/:name' }, 'request');
    log.debug('not shown at info');
    const [line, ...rest] = c.lines();
    expect(rest).toHaveLength(0);
    expect(line).toMatchObject({ level: 'info', nodeId: 'n1', requestId: 'r1', route: '/v1/secrets/:name', msg: 'request' });
    expect(typeof line?.['time']).toBe('string');
  });

  test('tokens, values and key material never reach the output', () => {
    const c = capture();
    const log = createLogger({ level: 'trace', nodeId: 'n1', destination: c.stream });
    log.info({ req: { method: 'GET', url: '/v1/tokens/self', headers: { authorization: `Bearer ${TOKEN}`, 'x-vault-token': TOKEN } } }, 'request');
    log.info({ token: TOKEN, value: VALUE, password: VALUE }, 'top level');
    log.debug({ secret: { name: 'apps/db', value: VALUE, plaintext: VALUE, valueBase64: VALUE }, created: { token: TOKEN }, key: { dek: VALUE } }, 'nested');
    log.warn({ cfg: { clusterKey: VALUE, bootstrapToken: TOKEN, localMasterKey: VALUE } }, 'config');
    const text = c.text();
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain('CANARY');
    const lines = c.lines();
    expect(lines).toHaveLength(4);
    expect((lines[0]?.['req'] as { headers: Record<string, string> }).headers).toEqual({ authorization: REDACTED, 'x-vault-token': REDACTED });
    expect(lines[1]).toMatchObject({ token: REDACTED, value: REDACTED });
    expect(lines[2]).toMatchObject({ secret: { name: 'apps/db', value: REDACTED } });
  });
});
