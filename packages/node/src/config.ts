/**
 * The server's configuration: parsed once, validated, frozen, passed down. Nothing else in the
 * node reads `process.env` (use {@link readEnv} at the entry point and hand the result here).
 *
 * Sources: `COFFER_*` environment variables and the matching flags (`COFFER_NODE_ID` ↔
 * `--node-id`); a flag wins over the variable. An empty variable counts as unset (env files and
 * container runtimes often produce `VAR=`). Every bad value throws a {@link ConfigError} whose
 * one-line message names the variable and the problem; secret values are never echoed.
 *
 * This file is the import point; the parts live in ./config/:
 * - `table.ts`: every variable once (default, parser, description) — add a variable there;
 * - `parsers.ts`: the value parsers; `load.ts`: the loader and the rules between variables;
 * - `docs.ts`: `describeConfig()` and docs/config.md's tables, derived from the table.
 */
export { CONFIG_ENV, CONFIG_VARIABLES, type ConfigVariable, type VariableSpec } from './config/table.js';
export { LOG_LEVELS, type ClusterMember, type HostPort, type LogLevel, type ReadAuthMode } from './config/parsers.js';
export { loadConfig, readEnv, redactConfig, type ConfigIo, type ServerConfig } from './config/load.js';
export { configDocsTables, describeConfig, renderConfigDocs } from './config/docs.js';
