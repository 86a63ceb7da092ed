export { buildProgram, main, EXIT, VERSION, type CliOptions, type RegisterCommands } from './main.js';
export { group, leaf, print, progress, withClient, wantsJson, type CliContext, type GlobalOptions } from './context.js';
export { CliError, usage, type CliErrorCode } from './errors.js';
export { processIo, readAll, type CliIo, type OutStream } from './io.js';
export { checkCidr, checkDuration, checkUrl, parseVersions } from './validate.js';
export { renderClusterStatus } from './commands/cluster.js';
