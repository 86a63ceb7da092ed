// docs/API.md documents exactly the routes the API mounts (one "### `METHOD /path`" heading each).
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { apiRoutes } from '../../src/http/api.js';
import { startHarness } from './harness.js';

test('docs/API.md and the mounted routes (native and Vault KV v2) agree', async () => {
  const h = await startHarness();
  try {
    const app = (await import('../../src/http/api.js')).createApi(h.ctx);
    const mounted = apiRoutes(app).map((r) => `${r.method} ${r.template}`).sort();
    const doc = readFileSync(path.join(__dirname, '..', '..', '..', '..', 'docs', 'API.md'), 'utf8');
    const documented = [...doc.matchAll(/^### `([A-Z]+ \/[^`]*)`$/gm)].map((m) => m[1] as string).sort();
    expect(documented).toEqual(mounted);
    // The Vault KV v2 surface is part of the mounted (and so the documented) set.
    for (const r of ['GET /v1/secret/data/{path+}', 'PATCH /v1/secret/data/{path+}', 'LIST /v1/secret/metadata/{path+}', 'POST /v1/secret/destroy/{path+}']) {
      expect(mounted).toContain(r);
    }
  } finally {
    await h.close();
  }
});
