// docs/API.md documents exactly the routes the API mounts (one "### `METHOD /path`" heading each).
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { apiRoutes } from '../../src/http/api.js';
import { startHarness } from './harness.js';

test('docs/API.md and the mounted native routes agree', async () => {
  const h = await startHarness();
  try {
    const app = (await import('../../src/http/api.js')).createApi(h.ctx);
    const mounted = apiRoutes(app).map((r) => `${r.method} ${r.template}`).sort();
    const doc = readFileSync(path.join(__dirname, '..', '..', '..', '..', 'docs', 'API.md'), 'utf8');
    const documented = [...doc.matchAll(/^### `([A-Z]+ \/[^`]*)`$/gm)].map((m) => m[1] as string).sort();
    expect(documented).toEqual(mounted);
  } finally {
    await h.close();
  }
});
