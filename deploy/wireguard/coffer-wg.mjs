#!/usr/bin/env node
// Generates the WireGuard overlay of a Coffer cluster: one key pair and one wg-quick config per
// node and per client peer (a service that reads secrets), the firewall that keeps the overlay
// addresses off every other interface, and the COFFER_* addresses that bind Raft to the overlay.
// Run `node deploy/wireguard/coffer-wg.mjs --help`. Needs Node >= 18; uses `wg` when present.
import { spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const HELP = `Usage: node deploy/wireguard/coffer-wg.mjs --nodes n1=HOST[:PORT],n2=HOST[:PORT],... [options]

Writes, into --out (default ./wg-coffer):
  keys/NAME.key, keys/NAME.pub   one X25519 key pair per node and client (private keys 0600, dir 0700).
                                 Existing keys are kept: re-run with more --clients to add peers
                                 without re-keying anyone.
  NAME.conf                      wg-quick config for each node and client (0600: it holds the key).
                                 Install as /etc/wireguard/IFACE.conf, then \`wg-quick up IFACE\`.
  NAME.coffer.env                the COFFER_* address settings of each node (no secrets).
  overlay.json                   the same facts for scripts and tests (names, addresses, public keys).
and prints, per node, the settings that put Coffer on the overlay: COFFER_NODE_ID,
COFFER_RAFT_ADDR and COFFER_ADVERTISE_RAFT (the peer listener binds to the overlay address only),
COFFER_API_ADDR and COFFER_ADVERTISE_API, COFFER_INITIAL_CLUSTER (overlay URLs) and
COFFER_READ_ALLOWLIST (the client peers' addresses).

Addressing: node i (in --nodes order) gets host i of --subnet (10.8.0.1, 10.8.0.2, ...), client j
gets host (--client-host-start + j - 1) (10.8.0.101, ...). IPv4 only.

Options:
  --nodes LIST            id=HOST[:PORT] pairs, in order: the underlay address where the other
                          nodes and the clients reach this node's WireGuard, and its UDP listen
                          port (default --listen-port; edit Endpoint lines if a NAT maps it).
                          Ids follow COFFER_NODE_ID's rule ([A-Za-z0-9._-], 1-64 bytes).
  --clients LIST          names of client peers (services that read secrets), comma-separated.
                          They connect to the nodes; nodes do not connect to them.
  --subnet CIDR           overlay subnet (default 10.8.0.0/24)
  --client-host-start N   host number of the first client (default 101)
  --listen-port N         default WireGuard UDP port of the nodes (default 51820)
  --raft-port N           Coffer peer port on the overlay (default 8201)
  --api-port N            Coffer API port on the overlay (default 8200)
  --interface NAME        interface name, i.e. the config's name under /etc/wireguard (default
                          wg-coffer); only used in the printed instructions
  --keepalive SECS        PersistentKeepalive on every peer (default 25; 0 = off). Needed behind NAT.
  --mtu N                 MTU line in every config (default: none, wg-quick picks 1420)
  --no-firewall           leave out the nftables PostUp/PostDown lines (see below)
  --keygen auto|wg|node   key generation: \`wg genkey\`/\`wg pubkey\` (wg), Node's crypto X25519
                          (node, same key format), or wg when installed else node (auto, default)
  --out DIR               output directory (default ./wg-coffer)
  -h, --help              this text

Firewall (nftables, in each node's PostUp): Linux accepts a packet for any of its addresses on any
interface, so a host on the underlay that routes the overlay subnet to a node's public address
would reach a port bound to the overlay address without WireGuard. The rules drop packets for the
node's overlay address that do not arrive on the WireGuard interface (or loopback), and packets to
the Raft port from overlay addresses that are not nodes: client peers reach the API, never Raft.

The printed COFFER_API_ADDR binds the API to the overlay too: there, a client's source address is
proven by its WireGuard key (a peer can only send from its AllowedIPs), which is what the read
allowlist (COFFER_READ_ALLOWLIST, seeded with the client addresses) relies on, and values travel
encrypted. Bind the API elsewhere (with TLS) if services cannot join the overlay.

Exit codes: 0 written, 2 bad usage, 1 other failure.`;

const TABLE = 'coffer_overlay';

/** @param {string} msg */
function usage(msg) {
  process.stderr.write(`coffer-wg: ${msg}\nRun with --help for usage.\n`);
  process.exit(2);
}

/** @param {string} s @param {string} what @param {number} min @param {number} max */
function int(s, what, min, max) {
  if (!/^\d+$/.test(s)) usage(`${what}: "${s}" is not a whole number`);
  const n = Number(s);
  if (n < min || n > max) usage(`${what}: ${n} is not in ${min}..${max}`);
  return n;
}

/** @param {string} s */
function ipToInt(s) {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (m === null || m.slice(1).some((p) => Number(p) > 255)) return null;
  return m.slice(1).reduce((a, p) => a * 256 + Number(p), 0);
}

/** @param {number} n */
function intToIp(n) {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

function parseSubnet(s) {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(s);
  const base = m === null ? null : ipToInt(m[1]);
  if (m === null || base === null) usage(`--subnet: "${s}" is not an IPv4 CIDR such as 10.8.0.0/24`);
  const bits = Number(m[2]);
  if (bits < 8 || bits > 30) usage(`--subnet: prefix /${bits} is not in /8../30`);
  const size = 2 ** (32 - bits);
  if (base % size !== 0) usage(`--subnet: ${s} has host bits set (did you mean ${intToIp(base - (base % size))}/${bits}?)`);
  return { base, bits, size };
}

/** @param {{base:number,bits:number,size:number}} net @param {number} host @param {string} who */
function hostAddr(net, host, who) {
  if (host < 1 || host > net.size - 2) usage(`${who} would be host ${host}, outside ${intToIp(net.base)}/${net.bits} (usable hosts 1..${net.size - 2})`);
  return intToIp(net.base + host);
}

const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

function wgAvailable() {
  const r = spawnSync('wg', ['--version'], { encoding: 'utf8' });
  return r.error === undefined && r.status === 0;
}

// PKCS#8 prefix of a raw X25519 private key (RFC 8410): lets Node derive the public key.
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** @param {string} privB64 @param {'wg'|'node'} how */
function publicOf(privB64, how) {
  if (how === 'wg') {
    const r = spawnSync('wg', ['pubkey'], { input: `${privB64}\n`, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`wg pubkey failed: ${r.stderr.trim()}`);
    return r.stdout.trim();
  }
  const raw = Buffer.from(privB64, 'base64');
  if (raw.length !== 32) throw new Error('private key is not 32 bytes of base64');
  const key = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
  return Buffer.from(/** @type {string} */ (createPublicKey(key).export({ format: 'jwk' }).x), 'base64url').toString('base64');
}

/** @param {'wg'|'node'} how */
function genPrivate(how) {
  if (how === 'wg') {
    const r = spawnSync('wg', ['genkey'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`wg genkey failed: ${r.stderr.trim()}`);
    return r.stdout.trim();
  }
  // X25519 clamps the scalar when it is used (RFC 7748 §5), as WireGuard does: any 32 random bytes
  // are a valid private key; Node's generator returns them.
  const { privateKey } = generateKeyPairSync('x25519');
  return Buffer.from(/** @type {string} */ (privateKey.export({ format: 'jwk' }).d), 'base64url').toString('base64');
}

function main() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        nodes: { type: 'string' },
        clients: { type: 'string', default: '' },
        subnet: { type: 'string', default: '10.8.0.0/24' },
        'client-host-start': { type: 'string', default: '101' },
        'listen-port': { type: 'string', default: '51820' },
        'raft-port': { type: 'string', default: '8201' },
        'api-port': { type: 'string', default: '8200' },
        interface: { type: 'string', default: 'wg-coffer' },
        keepalive: { type: 'string', default: '25' },
        mtu: { type: 'string' },
        'no-firewall': { type: 'boolean', default: false },
        keygen: { type: 'string', default: 'auto' },
        out: { type: 'string', default: 'wg-coffer' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    usage(/** @type {Error} */ (err).message);
  }
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  if (values.nodes === undefined) usage('--nodes is required');
  const net = parseSubnet(values.subnet);
  const listenPort = int(values['listen-port'], '--listen-port', 1, 65535);
  const raftPort = int(values['raft-port'], '--raft-port', 1, 65535);
  const apiPort = int(values['api-port'], '--api-port', 1, 65535);
  if (raftPort === apiPort) usage('--raft-port and --api-port must differ');
  const keepalive = int(values.keepalive, '--keepalive', 0, 65535);
  const mtu = values.mtu === undefined ? undefined : int(values.mtu, '--mtu', 1280, 9000);
  const clientStart = int(values['client-host-start'], '--client-host-start', 1, 2 ** 24);
  if (!/^[a-zA-Z0-9_=+.-]{1,15}$/.test(values.interface)) usage(`--interface: "${values.interface}" is not a valid interface name (1-15 of [a-zA-Z0-9_=+.-])`);
  if (!['auto', 'wg', 'node'].includes(values.keygen)) usage(`--keygen: "${values.keygen}" is not auto, wg or node`);
  const keygen = values.keygen === 'auto' ? (wgAvailable() ? 'wg' : 'node') : values.keygen;
  if (keygen === 'wg' && !wgAvailable()) usage('--keygen wg: `wg` is not installed (apt-get install --no-install-recommends wireguard-tools), or use --keygen node');

  /** @type {{id:string, host:string, port:number, addr:string}[]} */
  const nodes = [];
  for (const [i, item] of values.nodes.split(',').filter((s) => s !== '').entries()) {
    const m = /^([^=]+)=(\[[0-9a-fA-F:.]+\]|[^:\s]+)(?::(\d+))?$/.exec(item);
    if (m === null) usage(`--nodes: "${item}" is not id=host[:port]`);
    if (!NAME_RE.test(m[1])) usage(`--nodes: "${m[1]}" is not a valid node id ([A-Za-z0-9._-], 1-64 bytes)`);
    nodes.push({ id: m[1], host: m[2], port: m[3] === undefined ? listenPort : int(m[3], `--nodes ${m[1]} port`, 1, 65535), addr: hostAddr(net, i + 1, `node ${m[1]}`) });
  }
  if (nodes.length === 0) usage('--nodes lists no node');
  const clients = values.clients
    .split(',')
    .filter((s) => s !== '')
    .map((id, j) => {
      if (!NAME_RE.test(id)) usage(`--clients: "${id}" is not a valid name ([A-Za-z0-9._-], 1-64 bytes)`);
      return { id, addr: hostAddr(net, clientStart + j, `client ${id} (see --client-host-start)`) };
    });
  const names = [...nodes.map((n) => n.id), ...clients.map((c) => c.id)];
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) usage(`"${dup}" appears twice among nodes and clients`);
  const addrs = [...nodes.map((n) => n.addr), ...clients.map((c) => c.addr)];
  const clash = addrs.find((a, i) => addrs.indexOf(a) !== i);
  if (clash !== undefined) usage(`two peers would get ${clash}: move --client-host-start past the nodes`);

  const out = path.resolve(values.out);
  const keyDir = path.join(out, 'keys');
  mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  chmodSync(keyDir, 0o700);
  /** @type {Record<string, {priv:string, pub:string}>} */
  const keys = {};
  for (const name of names) {
    const kf = path.join(keyDir, `${name}.key`);
    let priv;
    if (existsSync(kf)) {
      priv = readFileSync(kf, 'utf8').trim();
    } else {
      priv = genPrivate(keygen);
      writeFileSync(kf, `${priv}\n`, { mode: 0o600, flag: 'wx' });
    }
    chmodSync(kf, 0o600);
    const pub = publicOf(priv, keygen);
    writeFileSync(path.join(keyDir, `${name}.pub`), `${pub}\n`, { mode: 0o644 });
    keys[name] = { priv, pub };
  }

  const prefix = `/${net.bits}`;
  const nodeSet = `{ ${nodes.map((n) => n.addr).join(', ')} }`;
  const ka = keepalive > 0 ? [`PersistentKeepalive = ${keepalive}`] : [];
  const header = (what) => [`# Coffer WireGuard overlay: ${what}. Generated by deploy/wireguard/coffer-wg.mjs.`, `# Install as /etc/wireguard/${values.interface}.conf (mode 0600), then: wg-quick up ${values.interface}`];
  const write = (file, text, mode) => {
    writeFileSync(file, text, { mode });
    chmodSync(file, mode);
  };

  for (const n of nodes) {
    const lines = [...header(`node ${n.id} (${n.addr})`), '[Interface]', `Address = ${n.addr}${prefix}`, `ListenPort = ${n.port}`, `PrivateKey = ${keys[n.id].priv}`];
    if (mtu !== undefined) lines.push(`MTU = ${mtu}`);
    if (!values['no-firewall']) {
      // %i is the interface name (wg-quick substitutes it). Idempotent: add + flush.
      const rules = [
        `add table inet ${TABLE}`,
        `flush table inet ${TABLE}`,
        `add chain inet ${TABLE} input { type filter hook input priority filter; policy accept; }`,
        `add rule inet ${TABLE} input iifname != { "lo", "%i" } ip daddr ${n.addr} drop`,
        `add rule inet ${TABLE} input ip daddr ${n.addr} tcp dport ${raftPort} ip saddr != ${nodeSet} drop`,
      ];
      lines.push(
        '# The overlay address answers only through WireGuard (or loopback), and its Raft port only to nodes.',
        `PostUp = nft '${rules.join('; ')}'`,
        `PostDown = nft delete table inet ${TABLE}`,
      );
    }
    for (const m of nodes) {
      if (m === n) continue;
      lines.push('', '[Peer]', `# node ${m.id}`, `PublicKey = ${keys[m.id].pub}`, `Endpoint = ${m.host}:${m.port}`, `AllowedIPs = ${m.addr}/32`, ...ka);
    }
    for (const c of clients) {
      // No Endpoint: the client dials in; WireGuard learns (and follows) its address.
      lines.push('', '[Peer]', `# client ${c.id}`, `PublicKey = ${keys[c.id].pub}`, `AllowedIPs = ${c.addr}/32`);
    }
    write(path.join(out, `${n.id}.conf`), `${lines.join('\n')}\n`, 0o600);
  }
  for (const c of clients) {
    const lines = [...header(`client ${c.id} (${c.addr})`), '[Interface]', `Address = ${c.addr}${prefix}`, `PrivateKey = ${keys[c.id].priv}`];
    if (mtu !== undefined) lines.push(`MTU = ${mtu}`);
    for (const n of nodes) lines.push('', '[Peer]', `# node ${n.id}`, `PublicKey = ${keys[n.id].pub}`, `Endpoint = ${n.host}:${n.port}`, `AllowedIPs = ${n.addr}/32`, ...ka);
    write(path.join(out, `${c.id}.conf`), `${lines.join('\n')}\n`, 0o600);
  }

  const initialCluster = nodes.map((n) => `${n.id}=http://${n.addr}:${raftPort}`).join(',');
  const allowlist = clients.map((c) => `${c.addr}/32`).join(',');
  /** @type {Record<string, Record<string, string>>} */
  const env = {};
  for (const n of nodes) {
    env[n.id] = {
      COFFER_NODE_ID: n.id,
      COFFER_RAFT_ADDR: `${n.addr}:${raftPort}`,
      COFFER_ADVERTISE_RAFT: `http://${n.addr}:${raftPort}`,
      COFFER_API_ADDR: `${n.addr}:${apiPort}`,
      COFFER_ADVERTISE_API: `http://${n.addr}:${apiPort}`,
      COFFER_INITIAL_CLUSTER: initialCluster,
      ...(allowlist === '' ? {} : { COFFER_READ_ALLOWLIST: allowlist }),
    };
    const text = Object.entries(env[n.id]).map(([k, v]) => `${k}=${v}`).join('\n');
    write(path.join(out, `${n.id}.coffer.env`), `# Coffer addresses of node ${n.id} on the WireGuard overlay (add the secrets from deploy/coffer.env.example).\n${text}\n`, 0o644);
  }
  const summary = {
    subnet: `${intToIp(net.base)}/${net.bits}`,
    interface: values.interface,
    listenPort,
    raftPort,
    apiPort,
    keygen,
    firewallTable: values['no-firewall'] ? null : TABLE,
    nodes: nodes.map((n) => ({ id: n.id, address: n.addr, endpoint: `${n.host}:${n.port}`, publicKey: keys[n.id].pub, config: `${n.id}.conf`, env: env[n.id] })),
    clients: clients.map((c) => ({ id: c.id, address: c.addr, publicKey: keys[c.id].pub, config: `${c.id}.conf` })),
  };
  write(path.join(out, 'overlay.json'), `${JSON.stringify(summary, null, 2)}\n`, 0o644);

  const say = [`# keys: ${keygen === 'wg' ? '`wg genkey` / `wg pubkey`' : "Node's crypto X25519"}; written to ${out}`];
  for (const n of nodes) say.push('', `# ${n.id}: install ${n.id}.conf as /etc/wireguard/${values.interface}.conf, then add to /etc/coffer/coffer.env:`, ...Object.entries(env[n.id]).map(([k, v]) => `${k}=${v}`));
  for (const c of clients) say.push('', `# client ${c.id} (${c.addr}): install ${c.id}.conf as /etc/wireguard/${values.interface}.conf; reach the API at http://${nodes[0].addr}:${apiPort} (or any node)`);
  process.stdout.write(`${say.join('\n')}\n`);
}

try {
  main();
} catch (err) {
  process.stderr.write(`coffer-wg: ${/** @type {Error} */ (err).message}\n`);
  process.exit(1);
}
