/**
 * One node's seal as the rest of the node uses it (COFFER_SEAL=shamir): the {@link SealManager}
 * kept in step with the replicated seal configuration, and the cluster-wide init (generate the
 * shares here, propose `seal.init`, answer only if this init won).
 *
 * Explicit dependencies: the replicated state is read through `state()` each time (a snapshot
 * install replaces the object), proposals go through `propose`. Nothing here knows HTTP.
 */
import { randomUUID } from 'node:crypto';
import { sealConfigOf, type Command, type CommandResult, type SealTables } from '@coffer/state';
import { SealError } from './errors.js';
import type { SealManager, SealStatus } from './seal.js';

/** What a {@link NodeSeal} needs. */
export interface NodeSealDeps {
  readonly manager: SealManager;
  /** The replicated state (read each time). */
  readonly state: () => SealTables;
  /** Proposes through Raft and resolves with the apply result (leader only). */
  readonly propose: (cmd: Command) => Promise<CommandResult>;
  /** The node's clock (ms). */
  readonly now: () => number;
  /** Told after the node was unsealed or sealed (logs, leadership hand-over). */
  readonly onChange?: (sealed: boolean) => void;
}

/** What `init` answers the operator: the shares, shown once. */
export interface SealInitAnswer {
  readonly keys: readonly string[];
}

/**
 * The seal of this node.
 *
 * @example
 * ```ts
 * const seal = new NodeSeal({ manager, state: () => store.state, propose, now: Date.now });
 * events.onApply(() => void seal.sync());
 * ```
 */
export class NodeSeal {
  readonly #d: NodeSealDeps;
  #syncing: Promise<void> = Promise.resolve();

  /** @param deps - see {@link NodeSealDeps} */
  constructor(deps: NodeSealDeps) {
    this.#d = deps;
  }

  /** @returns whether this node holds no key (it then serves only health, init, unseal, seal-status) */
  isSealed(): boolean {
    return this.#d.manager.isSealed();
  }

  /**
   * Vault's seal-status.
   * @returns initialized, sealed, t, n, progress
   */
  status(): SealStatus {
    return this.#d.manager.status();
  }

  /**
   * The replicated config's key id, once initialised (a restore must carry the same one).
   * @returns the key id or undefined
   */
  keyId(): string | undefined {
    return sealConfigOf(this.#d.state())?.keyId;
  }

  /**
   * Brings the manager in line with the replicated config (on start, after every apply). A new
   * config seals a node that held another key (a restore from another cluster).
   *
   * @returns when done
   */
  sync(): Promise<void> {
    const cfg = sealConfigOf(this.#d.state());
    const held = this.#d.manager.config();
    if (cfg === undefined || (held !== undefined && held.keyId === cfg.keyId && held.shares === cfg.shares && held.threshold === cfg.threshold)) return this.#syncing;
    this.#syncing = this.#syncing.then(() => this.#d.manager.configure(cfg));
    return this.#syncing;
  }

  /**
   * Initialises the cluster's seal: makes the key and the shares here, proposes `seal.init`, and
   * hands out the shares only if this init is the one the log applied first. The key itself is
   * already gone when this returns (SealManager.init keeps nothing).
   *
   * @param shares - `secret_shares`
   * @param threshold - `secret_threshold`
   * @returns the shares (base64)
   * @throws {NODE_SEAL_ALREADY_INITIALIZED} the cluster has a seal config (also when another init won the race)
   * @throws {NODE_SEAL_INVALID_PARAMS} bad numbers
   */
  async init(shares: number, threshold: number): Promise<SealInitAnswer> {
    await this.sync();
    if (sealConfigOf(this.#d.state()) !== undefined) throw new SealError('NODE_SEAL_ALREADY_INITIALIZED', 'this cluster is already initialized; unseal it with its shares');
    const made = await this.#d.manager.init({ shares, threshold });
    const { config } = made;
    const result = await this.#d.propose({
      type: 'seal.init',
      requestId: randomUUID(),
      at: this.#d.now(),
      shares: config.shares,
      threshold: config.threshold,
      keyCheck: config.keyCheck,
      keyId: config.keyId,
    });
    await this.sync();
    if (result.status !== 'ok') {
      // Another init won: these shares open nothing, and must never reach anyone.
      made.keys.length = 0;
      throw new SealError('NODE_SEAL_ALREADY_INITIALIZED', 'this cluster is already initialized (another init was applied first); unseal it with its shares');
    }
    return { keys: made.keys };
  }

  /**
   * One share (Vault's `{"key"}`).
   * @param key - base64 or hex of a share
   * @returns the status after it
   */
  async unseal(key: unknown): Promise<SealStatus> {
    await this.sync();
    const wasSealed = this.isSealed();
    const st = await this.#d.manager.submitShare(key);
    if (wasSealed && !st.sealed) this.#d.onChange?.(false);
    return st;
  }

  /**
   * Vault's `{"reset": true}`: forgets the shares given so far.
   * @returns the status
   */
  reset(): Promise<SealStatus> {
    return this.#d.manager.resetProgress();
  }

  /**
   * Drops the key from memory (`PUT /v1/sys/seal`).
   * @returns the status
   */
  async seal(): Promise<SealStatus> {
    const wasSealed = this.isSealed();
    const st = await this.#d.manager.seal();
    if (!wasSealed) this.#d.onChange?.(true);
    return st;
  }
}

/** What {@link startNodeSeal} needs from the node besides {@link NodeSealDeps}. */
export interface StartNodeSealDeps extends Omit<NodeSealDeps, 'manager' | 'onChange'> {
  /** COFFER_SEAL=shamir: the node's seal manager; undefined when the node is never sealed. */
  readonly manager: SealManager | undefined;
  readonly nodeId: string;
  readonly logger: { warn(msg: string): void };
  /** Called once the node is unsealed (the leader starts its workers then). */
  readonly onUnsealed: () => void;
  /** Subscribes to every apply (a `seal.init` or a restore may change the seal config). */
  readonly onApply: (fn: () => void) => void;
  /** A failure to follow the replicated seal config stops the node. */
  readonly failed: (err: unknown) => void;
}

/**
 * The node's seal, wired: starts sealed (also after a restart), follows the replicated seal config
 * after every apply, logs every change (a sealed node serves health, not /metrics: health's
 * `"sealed": true` is what monitoring sees).
 *
 * @param d - see {@link StartNodeSealDeps}
 * @returns the seal, or undefined when COFFER_SEAL is `none`
 */
export async function startNodeSeal(d: StartNodeSealDeps): Promise<NodeSeal | undefined> {
  if (d.manager === undefined) return undefined;
  const seal = new NodeSeal({
    manager: d.manager,
    state: d.state,
    propose: d.propose,
    now: d.now,
    onChange: (sealed) => {
      d.logger.warn(`${d.nodeId} is ${sealed ? 'sealed: it serves nothing but health, init, unseal and seal-status' : 'unsealed'}`);
      if (!sealed) d.onUnsealed();
    },
  });
  await seal.sync();
  d.onApply(() => {
    seal.sync().catch((err: unknown) => d.failed(err));
  });
  return seal;
}
