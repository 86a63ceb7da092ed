import type { ApiCore } from '../internal/core.js';

/** Vault's seal-status (`GET /v1/sys/seal-status`, and the answer of unseal and seal). */
export interface SealStatus {
  /** Always `shamir` (a cluster without a sealed start answers as an unsealed one). */
  type: string;
  /** Whether the cluster's seal was initialised (`coffer operator init`). */
  initialized: boolean;
  sealed: boolean;
  /** Shares needed. */
  t: number;
  /** Shares made. */
  n: number;
  /** Shares this node has accepted towards the next unseal. */
  progress: number;
}

/** What `init` answers, once per cluster: the shares (base64), shown this once only. */
export interface SealInit {
  keys: string[];
  keys_base64: string[];
}

/**
 * The sealed start (`client.operator`; COFFER_SEAL=shamir). Unseal, seal and status are per node:
 * they go to exactly one node (`address`, default the first configured one), never failing over
 * to another, so a share is never handed to a node it was not meant for.
 */
export class OperatorApi {
  readonly #core: ApiCore;
  readonly #first: () => string | undefined;

  /**
   * @param core - the client's internals
   * @param first - the first configured node URL
   */
  constructor(core: ApiCore, first: () => string | undefined) {
    this.#core = core;
    this.#first = first;
  }

  #pin(address: string | undefined): { address?: string } {
    const a = address ?? this.#first();
    return a === undefined ? {} : { address: a };
  }

  /**
   * Creates the cluster's master key and splits it (`PUT /v1/sys/init`). Never retried: a lost
   * answer cannot be asked for again (the second init is refused), so the caller must keep it.
   *
   * @param shares - number of shares (1-255)
   * @param threshold - shares needed to unseal
   * @param address - node to send it to (it forwards to the leader)
   * @returns the shares
   * @throws {CofferError} `already_initialized`, `invalid_request`
   */
  async init(shares: number, threshold: number, address?: string): Promise<SealInit> {
    return this.#core.json<SealInit>(
      { method: 'PUT', path: '/v1/sys/init', json: { secret_shares: shares, secret_threshold: threshold }, idempotent: false, ...this.#pin(address) },
      { bypassBreaker: true },
    );
  }

  /**
   * Gives one share to one node (`PUT /v1/sys/unseal`).
   *
   * @param key - the share (base64 or hex)
   * @param address - the node to unseal (default: the first configured one)
   * @returns that node's status after the share
   * @throws {CofferError} `unseal_key_malformed`, `unseal_key_duplicate`, `unseal_keys_wrong`, `not_initialized`
   */
  async unseal(key: string, address?: string): Promise<SealStatus> {
    return this.#core.json<SealStatus>({ method: 'PUT', path: '/v1/sys/unseal', json: { key }, idempotent: false, ...this.#pin(address) }, { bypassBreaker: true });
  }

  /**
   * Forgets the shares a node has accepted so far (`{"reset": true}`).
   *
   * @param address - the node (default: the first configured one)
   * @returns its status
   */
  async resetUnseal(address?: string): Promise<SealStatus> {
    return this.#core.json<SealStatus>({ method: 'PUT', path: '/v1/sys/unseal', json: { reset: true }, idempotent: true, ...this.#pin(address) }, { bypassBreaker: true });
  }

  /**
   * Seals one node: it drops the key from memory (`PUT /v1/sys/seal`, `operator.seal`).
   *
   * @param address - the node (default: the first configured one)
   * @returns its status
   * @throws {CofferError} `permission_denied`, `sealed`
   */
  async seal(address?: string): Promise<SealStatus> {
    return this.#core.json<SealStatus>({ method: 'PUT', path: '/v1/sys/seal', idempotent: true, ...this.#pin(address) }, { bypassBreaker: true });
  }

  /**
   * @param address - the node (default: the first configured one)
   * @returns its seal status
   */
  async status(address?: string): Promise<SealStatus> {
    return this.#core.json<SealStatus>({ method: 'GET', path: '/v1/sys/seal-status', idempotent: true, ...this.#pin(address) }, { bypassBreaker: true });
  }
}
