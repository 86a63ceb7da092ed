/**
 * The client-facing listener (`COFFER_API_ADDR`): HTTP or HTTPS, bounded against slow clients,
 * counting requests for a graceful drain, naming this node in every answer, and sending the
 * cluster-key-signed join requests past the API's pipeline.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { Joins } from './cluster/join.js';
import type { ServerConfig } from './config.js';
import { ApiActivity } from './http/drain.js';
import { acceptListMethod } from './http/list-method.js';

/** Open API connections one node accepts (clients, balancers, forwarding members). */
const API_MAX_CONNECTIONS = 8192;

/** The listener (not yet listening) and its request counts. */
export interface ApiListener {
  readonly server: Server;
  readonly activity: ApiActivity;
}

/**
 * @param config - node id and TLS files
 * @param app - the API's request handler
 * @param joins - answers `POST /v1/cluster/join`
 * @param closing - whether the node is shutting down (answers then say `Connection: close`)
 * @returns the listener
 */
export function createApiListener(config: Readonly<ServerConfig>, app: (req: IncomingMessage, res: ServerResponse) => void, joins: Joins, closing: () => boolean): ApiListener {
  const activity = new ApiActivity();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    activity.track(res);
    res.setHeader('x-coffer-node-id', config.nodeId);
    if (closing()) res.setHeader('connection', 'close');
    if (Joins.isJoin(req)) return joins.serve(req, res);
    app(req, res);
  };
  // Slow clients cannot hold the node: headers within 10 s, a whole request (a restore included)
  // within 5 min, and at most API_MAX_CONNECTIONS open connections.
  const serverOptions = { keepAliveTimeout: 65_000, headersTimeout: 10_000, requestTimeout: 300_000 };
  const server: Server = config.tls === undefined
    ? createHttpServer(serverOptions, handler)
    : createHttpsServer({ cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile), ...serverOptions }, handler);
  server.maxConnections = API_MAX_CONNECTIONS;
  acceptListMethod(server);
  return { server, activity };
}
