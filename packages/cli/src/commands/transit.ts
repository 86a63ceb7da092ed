/**
 * `coffer transit create|rotate|encrypt|decrypt KEY …`: encryption as a service. Plaintext is
 * UTF-8 text on argv or stdin (`-`, or omitted with stdin not a terminal, which keeps it out of
 * shell history and `ps`); the CLI does the base64 the API speaks. `decrypt` prints the UTF-8
 * plaintext.
 */
import type { TransitKey, TransitKeyType } from '@coffer/client';
import type { Command } from 'commander';
import { group, leaf, print, withClient, type CliContext } from '../context.js';
import { usage } from '../errors.js';
import { readAll } from '../io.js';

const TYPES: readonly TransitKeyType[] = ['xchacha20-poly1305', 'aes256-gcm'];

function keyType(v: string): TransitKeyType {
  if (!(TYPES as readonly string[]).includes(v)) throw usage(`--type must be one of ${TYPES.join(', ')}, got "${v}"`);
  return v as TransitKeyType;
}

function keyText(k: TransitKey): string {
  const versions = Object.entries(k.versions)
    .map(([v, at]) => `  v${v}  created ${new Date(at * 1000).toISOString()}`)
    .join('\n');
  return `key ${k.name} (${k.type}): latest version ${k.latestVersion}, min decryption version ${k.minDecryptionVersion}, deletion ${k.deletionAllowed ? 'allowed' : 'not allowed'}\n${versions}`;
}

/** The plaintext: the argument, or stdin for `-` (or when omitted and stdin is not a terminal). */
async function readPlaintext(ctx: CliContext, arg: string | undefined): Promise<Buffer> {
  if (arg !== undefined && arg !== '-') return Buffer.from(arg, 'utf8');
  if (arg === '-' || ctx.io.stdin.isTTY !== true) {
    let raw = await readAll(ctx.io);
    // `echo text | coffer transit encrypt k` adds a newline nobody meant to encrypt.
    if (raw.subarray(-2).toString() === '\r\n') raw = raw.subarray(0, -2);
    else if (raw.subarray(-1).toString() === '\n') raw = raw.subarray(0, -1);
    return raw;
  }
  throw usage("missing PLAINTEXT: give it, or '-' to read it from stdin (keeps it out of shell history)");
}

/**
 * Register `coffer transit`.
 *
 * @param program - root command
 * @param ctx - CLI context
 */
export function registerTransit(program: Command, ctx: CliContext): void {
  const g = group(program, 'transit', 'encryption as a service: encrypt and decrypt under keys the cluster keeps (never handed out)', [
    'coffer transit create orders',
    "coffer transit encrypt orders '4111 1111 1111 1111'",
    'coffer transit decrypt orders coffer:v1:…',
  ]);

  leaf(g, 'create <key>', 'create a transit key (default type xchacha20-poly1305; an existing key is left as it is)', [
    'coffer transit create orders',
    'coffer transit create payments --type aes256-gcm',
  ])
    .option('--type <type>', `key type: ${TYPES.join(' or ')} (default xchacha20-poly1305)`, keyType)
    .action(async (key: string, o: { type?: TransitKeyType }, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const k = await c.transit.createKey(key, o.type);
        print(ctx, cmd, k, () => keyText(k));
      });
    });

  leaf(g, 'rotate <key>', 'add a new key version; new ciphertexts use it, old ones still decrypt (until the minimum decryption version moves)', [
    'coffer transit rotate orders',
  ]).action(async (key: string, _o: unknown, cmd: Command) => {
    await withClient(ctx, cmd, async (c) => {
      const k = await c.transit.rotateKey(key);
      print(ctx, cmd, k, () => keyText(k));
    });
  });

  leaf(g, 'encrypt <key> [plaintext]', 'encrypt UTF-8 text (PLAINTEXT "-" or omitted: read stdin); prints the coffer:vN: ciphertext', [
    "coffer transit encrypt orders 'card 4111'",
    'printf %s "$CARD" | coffer transit encrypt orders - --context tenant-42',
    'coffer transit encrypt orders - --json < note.txt   # {"ciphertext","keyVersion"}',
  ])
    .option('--context <text>', 'associated data the ciphertext is bound to (UTF-8); decrypt needs the same')
    .action(async (key: string, plaintext: string | undefined, o: { context?: string }, cmd: Command) => {
      const pt = await readPlaintext(ctx, plaintext);
      try {
        await withClient(ctx, cmd, async (c) => {
          const r = await c.transit.encrypt(key, pt, o.context === undefined ? {} : { context: o.context });
          print(ctx, cmd, r, () => r.ciphertext);
        });
      } finally {
        pt.fill(0);
      }
    });

  leaf(g, 'decrypt <key> <ciphertext>', 'decrypt a coffer:vN: ciphertext and print the UTF-8 plaintext', [
    'coffer transit decrypt orders coffer:v1:…',
    'coffer transit decrypt orders coffer:v2:… --context tenant-42 --json   # {"plaintext"}',
  ])
    .option('--context <text>', 'the context given at encryption (UTF-8)')
    .action(async (key: string, ciphertext: string, o: { context?: string }, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const pt = await c.transit.decrypt(key, ciphertext, o.context === undefined ? {} : { context: o.context });
        try {
          const text = pt.toString('utf8');
          print(ctx, cmd, { plaintext: text }, () => text);
        } finally {
          pt.fill(0);
        }
      });
    });
}
