// Every SealError reaches the client as its API code and status, with the seal's own sentence
// (never a share), and a sealed node's refusal carries Retry-After.
import { SEAL_ERROR_CODES, SealError, type SealErrorCode } from '../src/seal/errors.js';
import { httpStatus, toServiceError } from '../src/http/errors.js';

const expected: Record<SealErrorCode, readonly [code: string, status: number]> = {
  NODE_SEAL_NOT_INITIALIZED: ['not_initialized', 400],
  NODE_SEAL_ALREADY_INITIALIZED: ['already_initialized', 400],
  NODE_SEAL_INVALID_PARAMS: ['invalid_request', 400],
  NODE_SEAL_SHARE_MALFORMED: ['unseal_key_malformed', 400],
  NODE_SEAL_SHARE_DUPLICATE: ['unseal_key_duplicate', 400],
  NODE_SEAL_SHARES_WRONG: ['unseal_keys_wrong', 400],
  NODE_SEAL_SEALED: ['sealed', 503],
};

test.each(SEAL_ERROR_CODES.map((c) => [c]))('%s', (code) => {
  const se = toServiceError(new SealError(code, 'a sentence for the operator'));
  const [apiCode, status] = expected[code];
  expect(se.code).toBe(apiCode);
  expect(httpStatus(se)).toBe(status);
  expect(se.message).toBe('a sentence for the operator');
  expect(se.retryAfterSecs).toBe(code === 'NODE_SEAL_SEALED' ? 1 : undefined);
});
