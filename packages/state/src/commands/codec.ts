// The command wire codec: [formatVersion u8][type u8][payload]. The payload is a hand-written
// deterministic binary encoding (see bytes.ts): one command has exactly one byte string, so golden
// fixtures pin the format and two replicas never disagree on what a byte string means.
//
// Rules (ARCHITECTURE.md "Commands and upgrades", STYLE.md §5):
// - Type numbers are append-only. A retired type keeps its number with a `Deprecated` comment.
// - A new format of an existing type gets the next version number; the decoder keeps reading
//   every older version and lifts it to the current shape (the spec's `read`) before apply.
// - Unknown type or version is a typed error, never a guess; the node stops applying.
// - Fixtures test/fixtures/commands/<type>.v<N>.bin are only ever added to.
import { Reader, Writer } from '../bytes.js';
import { StateError } from '../errors.js';
import { SUPPORTED_COMMAND_VERSIONS, TYPE_BY_ID, isCommandType, specOf, type Command } from './registry.js';
import { MAX_ID_BYTES, bad, checkInt } from './spec.js';

// Validation before encoding: a malformed command must be refused on the proposer, never
// replicated (every replica would then have to refuse it at apply, or worse, crash on it).
function validate(c: Command): void {
  if (typeof c !== 'object' || c === null || !isCommandType(c.type)) bad('unknown command type');
  if (typeof c.requestId !== 'string' || Buffer.byteLength(c.requestId) > MAX_ID_BYTES) bad('requestId must be a string of at most 256 bytes');
  checkInt(c.at, 'at');
  specOf(c.type).validate(c);
}

/**
 * Encodes a command in the current format version of its type.
 *
 * @param cmd - the command, complete (timestamps, versions, sealed values decided by the proposer)
 * @returns `[formatVersion][type][payload]`
 * @throws {SM_INVALID_COMMAND} when a field is malformed; nothing malformed is ever proposed
 * @example
 * ```ts
 * const data = encodeCommand({ type: 'noop', requestId: 'r1', at: Date.now() });
 * ```
 */
export function encodeCommand(cmd: Command): Uint8Array {
  validate(cmd);
  const spec = specOf(cmd.type);
  const w = new Writer(cmd.type === 'secret.put' ? 128 + cmd.sealed.ciphertext.length : 128);
  w.u8(spec.version).u8(spec.id);
  w.str(cmd.requestId).u53(cmd.at);
  spec.write(w, cmd);
  return w.finish();
}

/** A decoded command together with the format version it was written in. */
export type DecodedCommand = { version: number; command: Command };

/**
 * Decodes command bytes of any supported version. Each version's payload is the previous one's
 * with fields appended; the spec reads what the version has and gives older ones the defaults of
 * the fields they lack, so the command is already in its current shape.
 *
 * @param data - `[formatVersion][type][payload]`
 * @returns the command and the version it was written in
 * @throws {SM_UNKNOWN_COMMAND} unknown type byte
 * @throws {SM_UNSUPPORTED_VERSION} version 0 or newer than this build supports
 * @throws {SM_CORRUPT_COMMAND} anything malformed (truncated, trailing bytes, bad UTF-8, bad tags)
 */
export function decodeCommandVersioned(data: Uint8Array): DecodedCommand {
  if (data.length < 2) throw new StateError('SM_CORRUPT_COMMAND', 'command shorter than its 2-byte header');
  const version = data[0] as number;
  const typeId = data[1] as number;
  const type = TYPE_BY_ID.get(typeId);
  if (type === undefined) throw new StateError('SM_UNKNOWN_COMMAND', `unknown command type ${typeId} (format version ${version})`);
  if (version === 0 || version > SUPPORTED_COMMAND_VERSIONS[type]) {
    throw new StateError('SM_UNSUPPORTED_VERSION', `command ${type} v${version} is not supported (this build reads up to v${SUPPORTED_COMMAND_VERSIONS[type]})`);
  }
  const r = new Reader(data.subarray(2), 'SM_CORRUPT_COMMAND');
  const requestId = r.str();
  const at = r.u53();
  const command = specOf(type).read(r, { requestId, at }, type, version);
  r.end();
  // The encoder's rules hold for decoded commands too: bytes it could not have produced are corrupt.
  try {
    validate(command);
  } catch (e) {
    throw new StateError('SM_CORRUPT_COMMAND', `command ${type} v${version}: ${(e as Error).message}`);
  }
  return { version, command };
}

/**
 * Lifts a command decoded from an older format version to the current shape. Apply only ever sees
 * current shapes (cf. etcd applying `cc.AsV2()`). The specs' readers already fill the fields a
 * version lacks with their defaults, so this is the identity today; a change of shape that is not
 * an appended field goes here.
 *
 * @param decoded - output of `decodeCommandVersioned`
 * @returns the command in its current shape
 */
export function upcast(decoded: DecodedCommand): Command {
  return decoded.command;
}

/**
 * Decodes and upcasts command bytes.
 *
 * @param data - encoded command
 * @returns the command in its current shape
 * @throws {SM_UNKNOWN_COMMAND} {SM_UNSUPPORTED_VERSION} {SM_CORRUPT_COMMAND}
 * @example
 * ```ts
 * const cmd = decodeCommand(encodeCommand({ type: 'noop', requestId: 'r', at: 0 }));
 * ```
 */
export function decodeCommand(data: Uint8Array): Command {
  return upcast(decodeCommandVersioned(data));
}
