/**
 * The PostgreSQL rotation target without a PostgreSQL server: the SCRAM verifier against RFC 7677's
 * worked example, role/URL/target validation, and the errors of targets that cannot be reached
 * (never quoting a password or the URL). The real-server tests are in
 * packages/cluster-tests/test/postgres-target.test.ts.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { RotationTargetError } from '../src/rotation/errors.js';
import {
  checkPostgresRole,
  checkPostgresUrl,
  checkRotationTarget,
  decodeRotationTarget,
  encodeRotationTarget,
  setPostgresPassword,
} from '../src/rotation/postgres.js';
import { scramSha256Verifier } from '../src/rotation/scram.js';

describe('SCRAM-SHA-256 verifier', () => {
  // RFC 7677 §3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
  const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
  const authMessage =
    'n=user,r=rOprNGfwEbeRWgbNEkqO,' +
    'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,' +
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
  const clientProof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
  const serverSignature = Buffer.from('6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=', 'base64');

  test('ServerKey reproduces the RFC 7677 server signature', async () => {
    const v = await scramSha256Verifier('pencil', { salt });
    expect(createHmac('sha256', v.serverKey).update(authMessage).digest().equals(serverSignature)).toBe(true);
  });

  test('StoredKey accepts the RFC 7677 client proof (H(proof XOR HMAC(StoredKey, AuthMessage)) = StoredKey)', async () => {
    const v = await scramSha256Verifier('pencil', { salt });
    const clientSignature = createHmac('sha256', v.storedKey).update(authMessage).digest();
    const clientKey = Buffer.from(clientProof.map((b, i) => b ^ (clientSignature[i] ?? 0)));
    expect(timingSafeEqual(createHash('sha256').update(clientKey).digest(), v.storedKey)).toBe(true);
  });

  test('text form is PostgreSQL\'s SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>', async () => {
    const v = await scramSha256Verifier('pencil', { salt });
    expect(v.text).toBe(
      'SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=',
    );
  });

  test('a wrong password gives other keys; a default salt is 16 random bytes, fresh each time', async () => {
    const good = await scramSha256Verifier('pencil', { salt });
    const bad = await scramSha256Verifier('pencil2', { salt });
    expect(Buffer.from(bad.storedKey).equals(Buffer.from(good.storedKey))).toBe(false);
    const a = await scramSha256Verifier('pencil');
    const b = await scramSha256Verifier('pencil');
    expect(a.salt).toHaveLength(16);
    expect(a.iterations).toBe(4096);
    expect(Buffer.from(a.salt).equals(Buffer.from(b.salt))).toBe(false);
    expect(a.text).not.toBe(b.text);
  });

  test.each([
    ['', /non-empty/],
    ['pässword', /printable ASCII/],
    ['tab\there', /printable ASCII/],
    ['x'.repeat(1025), /longer than 1024/],
  ])('refuses password %#, without quoting it', async (pw, re) => {
    const err = await scramSha256Verifier(pw).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RangeError);
    expect((err as RangeError).message).toMatch(re);
    if (pw.length > 0) expect((err as RangeError).message).not.toContain(pw);
  });

  test('refuses fewer than 4096 iterations and salts under 8 bytes', async () => {
    await expect(scramSha256Verifier('pencil', { iterations: 4095 })).rejects.toThrow(RangeError);
    await expect(scramSha256Verifier('pencil', { salt: new Uint8Array(7) })).rejects.toThrow(RangeError);
  });
});

describe('role names', () => {
  test.each(['app_user', 'App-User', 'a', 'x'.repeat(63), 'é'.repeat(31), 'with space', 'current_user', 'Ω'])('accepts %j', (r) => {
    expect(checkPostgresRole(r)).toEqual({ ok: true });
  });
  test.each([
    [42, /must be a string/],
    ['', /empty/],
    ['x'.repeat(64), /longer than 63 bytes/],
    ['é'.repeat(32), /longer than 63 bytes/], // 64 bytes in UTF-8
    ['a\u0000b', /control character/],
    ['a\nb', /control character/],
    ['a\u0085b', /control character/],
    [' app', /leading or trailing/],
    ['app ', /leading or trailing/],
    ['public', /reserved/],
    ['none', /reserved/],
    ['pg_monitor', /pg_/],
  ])('refuses %j', (r, re) => {
    const c = checkPostgresRole(r);
    expect(c.ok).toBe(false);
    if (!c.ok) expect(c.reason).toMatch(re);
  });
});

describe('connection URLs', () => {
  test.each([
    'postgres://admin:pw@127.0.0.1:5432/postgres',
    'postgresql://admin:p%40ss@db.internal/postgres?sslmode=require',
    'postgresql://admin@localhost/postgres?host=/var/run/postgresql',
  ])('accepts %s', (u) => {
    expect(checkPostgresUrl(u)).toEqual({ ok: true });
  });
  test.each([
    [null, /must be a string/],
    ['', /empty/],
    ['not-a-url-s3cr3t-pw', /not a valid URL/],
    ['postgres://admin:s3cr3t-pw@db/postgres extra', /whitespace/],
    ['mysql://admin:s3cr3t-pw@db/x', /postgres:\/\/ or postgresql:\/\//],
    ['https://admin:s3cr3t-pw@db/x', /postgres:\/\/ or postgresql:\/\//],
    ['postgres://:s3cr3t-pw@db/x', /name the admin user/],
    ['postgres://admin:s3cr3t-pw%zz@db/x', /malformed %-escape/],
    ['postgres://admin:s3cr3t-pw@/x', /not a valid URL/],
    [' postgres://admin:s3cr3t-pw@db/x', /whitespace/],
    [`postgres://admin:s3cr3t-pw@db/${'x'.repeat(4100)}`, /longer than 4096/],
  ])('refuses %#, never quoting the URL', (u, re) => {
    const c = checkPostgresUrl(u);
    expect(c.ok).toBe(false);
    if (!c.ok) {
      expect(c.reason).toMatch(re);
      expect(c.reason).not.toContain('s3cr3t');
    }
  });
});

describe('rotation target objects', () => {
  const good = { type: 'postgres', role: 'app_user', connectionSecret: 'db/admin-url' };

  test('accepts the contract shape and returns it canonically', () => {
    const r = checkRotationTarget({ connectionSecret: 'db/admin-url', role: 'app_user', type: 'postgres' }, { secretName: 'db/app' });
    expect(r).toEqual({ ok: true, target: good });
    if (r.ok) {
      const text = encodeRotationTarget(r.target);
      expect(text).toBe('coffer-target:v1:{"type":"postgres","role":"app_user","connectionSecret":"db/admin-url"}');
      expect(decodeRotationTarget(text)).toEqual(good);
    }
  });

  test.each([
    [null, /must be an object/],
    ['postgres', /must be an object/],
    [[good], /must be an object/],
    [{ ...good, type: 'mysql' }, /type must be "postgres".*"mysql"/],
    [{ role: 'app_user', connectionSecret: 'db/admin-url' }, /type must be "postgres".*missing/],
    [{ ...good, extra: 1 }, /unknown field "extra"/],
    [{ ...good, role: 'pg_read_all_data' }, /rotation\.target\.role: .*pg_/],
    [{ ...good, role: undefined }, /rotation\.target\.role: .*string/],
    [{ ...good, connectionSecret: 'a//b' }, /rotation\.target\.connectionSecret: .*empty segment/],
    [{ ...good, connectionSecret: 7 }, /rotation\.target\.connectionSecret/],
  ])('refuses %j', (v, re) => {
    const r = checkRotationTarget(v);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(re);
  });

  test('a secret cannot be its own connection secret', () => {
    const r = checkRotationTarget({ ...good, connectionSecret: 'db/app' }, { secretName: 'db/app' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/another secret/);
  });

  test('stored strings that are not targets (written before targets were objects) decode to null', () => {
    expect(decodeRotationTarget('postgres://legacy')).toBeNull();
    expect(decodeRotationTarget('{"type":"ldap"}')).toBeNull();
    // Not even target JSON: before targets were objects any string was stored, without the
    // secret.read check on the connection secret, so only the prefixed form is ever run.
    expect(decodeRotationTarget('{"type":"postgres","role":"app_user","connectionSecret":"db/admin-url"}')).toBeNull();
  });
});

describe('setPostgresPassword without a server', () => {
  const password = 'N3w-Passw0rd-that-must-not-leak';

  async function failure(p: Promise<void>): Promise<RotationTargetError> {
    const err = await p.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RotationTargetError);
    return err as RotationTargetError;
  }

  test('bad role and bad URL are refused before connecting, with code NODE_ROTATION_TARGET_INVALID', async () => {
    const a = await failure(setPostgresPassword({ connectionUrl: 'postgres://admin:Adm1n-pw@127.0.0.1:1/postgres', role: 'pg_monitor', password }));
    expect(a.code).toBe('NODE_ROTATION_TARGET_INVALID');
    expect(a.applied).toBe('no');
    const b = await failure(setPostgresPassword({ connectionUrl: 'mysql://admin:Adm1n-pw@127.0.0.1/x', role: 'app_user', password }));
    expect(b.code).toBe('NODE_ROTATION_TARGET_INVALID');
    expect(b.message).toContain('"app_user"');
    for (const e of [a, b]) {
      expect(e.message).not.toContain('Adm1n-pw');
      expect(e.message).not.toContain(password);
    }
  });

  test('a bad timeout or password is a programmer error (RangeError)', async () => {
    const connectionUrl = 'postgres://admin:x@127.0.0.1:1/postgres';
    await expect(setPostgresPassword({ connectionUrl, role: 'app_user', password, timeoutMs: 0 })).rejects.toThrow(RangeError);
    await expect(setPostgresPassword({ connectionUrl, role: 'app_user', password: 'naïve' })).rejects.toThrow(RangeError);
  });

  test('nothing listening: NODE_ROTATION_TARGET_UNREACHABLE, applied "no", no secret in the message', async () => {
    // Bind then close a port, so nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const e = await failure(setPostgresPassword({ connectionUrl: `postgres://admin:Adm1n-pw@127.0.0.1:${port}/postgres`, role: 'app_user', password, timeoutMs: 2000 }));
    expect(e.code).toBe('NODE_ROTATION_TARGET_UNREACHABLE');
    expect(e.applied).toBe('no');
    expect(e.message).toMatch(/"app_user"/);
    expect(e.message).toMatch(/ECONNREFUSED/);
    expect(e.message).not.toContain('Adm1n-pw');
    expect(e.message).not.toContain(password);
  });

  describe('a server that accepts TCP and never answers', () => {
    let server: Server;
    let port = 0;
    const sockets = new Set<Socket>();
    beforeAll(async () => {
      server = createServer((s) => {
        sockets.add(s);
        s.resume(); // read (and ignore) the startup message, so the client's FIN is seen
        s.on('close', () => sockets.delete(s));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as { port: number }).port;
    });
    afterAll(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    test('NODE_ROTATION_TARGET_TIMEOUT within the bound, and the connection is closed', async () => {
      const t0 = Date.now();
      const e = await failure(setPostgresPassword({ connectionUrl: `postgres://admin:Adm1n-pw@127.0.0.1:${port}/postgres`, role: 'app_user', password, timeoutMs: 300 }));
      const took = Date.now() - t0;
      expect(e.code).toBe('NODE_ROTATION_TARGET_TIMEOUT');
      expect(e.applied).toBe('no'); // timed out while connecting: nothing was sent
      expect(took).toBeGreaterThanOrEqual(290);
      expect(took).toBeLessThan(3000);
      expect(e.message).not.toContain('Adm1n-pw');
      // The client hung up: the fake server sees no open socket left.
      // (pg's own backstop would close it only at timeoutMs + 1 s; ours closes it at once.)
      for (let i = 0; i < 20 && sockets.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(sockets.size).toBe(0);
    });
  });
});

describe('a server whose error text echoes secrets', () => {
  // A PostgreSQL ErrorResponse ('E') with severity, SQLSTATE and a message (protocol v3, §55.7).
  function errorResponse(sqlState: string, message: string): Buffer {
    const body = Buffer.concat([
      Buffer.from('SFATAL\0', 'utf8'),
      Buffer.from(`C${sqlState}\0`, 'utf8'),
      Buffer.from(`M${message}\0`, 'utf8'),
      Buffer.from([0]),
    ]);
    const head = Buffer.alloc(5);
    head.write('E', 0, 'latin1');
    head.writeInt32BE(body.length + 4, 1);
    return Buffer.concat([head, body]);
  }

  test('passwords and the URL in the answer are replaced by [redacted]', async () => {
    const adminPassword = 'Adm1n-pw-echoed';
    const newPassword = 'N3w-pw-echoed-back-by-a-bad-server';
    let url = '';
    const server = createServer((s) => {
      s.once('data', () => s.end(errorResponse('28000', `no entry for ${url} (password ${adminPassword}, new ${newPassword})`)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      url = `postgres://admin:${adminPassword}@127.0.0.1:${(server.address() as { port: number }).port}/postgres`;
      const err = await setPostgresPassword({ connectionUrl: url, role: 'app_user', password: newPassword, timeoutMs: 2000 }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RotationTargetError);
      const e = err as RotationTargetError;
      expect(e.code).toBe('NODE_ROTATION_TARGET_UNREACHABLE');
      expect(e.targetCode).toBe('28000');
      expect(e.message).toContain('no entry for [redacted] (password [redacted], new [redacted])');
      for (const secret of [adminPassword, newPassword, url]) expect(`${e.message}${JSON.stringify(e)}`).not.toContain(secret);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
