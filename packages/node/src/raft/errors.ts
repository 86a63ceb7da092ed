/**
 * The one translation of the Raft driver's errors into API errors. Anything that is not a
 * {@link DriverError} passes through unchanged (the API's own mapping handles it).
 *
 * | driver code           | API code         | status |
 * |-----------------------|------------------|--------|
 * | `not_leader`          | `no_leader`      | 503    |
 * | `dropped`             | `no_leader`      | 503    |
 * | `outcome_unknown`     | `outcome_unknown`| 503    |
 * | `no_quorum`           | `no_quorum`      | 503    |
 * | `stopped`             | `shutting_down`  | 503    |
 * | `conf_change_pending` | `no_quorum`      | 503    |
 * | `invalid_conf_change` | `invalid_request`| 400    |
 *
 * Every 503 carries Retry-After: 1.
 */
import { ServiceError } from '../service/errors.js';
import { DriverError } from './driver-types.js';

/**
 * @param err - anything a driver call threw
 * @param leader - the leader this node knows of (decides the `not_leader` message)
 * @returns the error to throw to the API layer
 */
export function driverErrorToService(err: unknown, leader: string | null): Error {
  if (!(err instanceof DriverError)) return err as Error;
  switch (err.code) {
    case 'not_leader':
      return new ServiceError('no_leader', leader === null ? 'no leader is known; retry shortly' : 'this node is not the leader; retry', { retryAfterSecs: 1 });
    case 'dropped':
      return new ServiceError('no_leader', 'leadership changed before the write committed; it was not applied; retry', { retryAfterSecs: 1 });
    case 'outcome_unknown':
      return new ServiceError('outcome_unknown', err.message, { retryAfterSecs: 1 });
    case 'no_quorum':
      return new ServiceError('no_quorum', 'no quorum: the cluster cannot confirm the read right now', { retryAfterSecs: 1 });
    case 'stopped':
      return new ServiceError('shutting_down', 'the node is shutting down', { retryAfterSecs: 1 });
    case 'conf_change_pending':
      return new ServiceError('no_quorum', 'another membership change is in progress; retry when it completes', { retryAfterSecs: 1 });
    case 'invalid_conf_change':
      return new ServiceError('invalid_request', err.message);
  }
}
