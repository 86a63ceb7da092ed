/** The process streams, injectable so that tests run the CLI in-process. */

/** Something text or bytes can be written to. */
export interface OutStream {
  write(chunk: string | Uint8Array): unknown;
  isTTY?: boolean;
}

/** Streams and environment the CLI uses. */
export interface CliIo {
  stdout: OutStream;
  stderr: OutStream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

/** @returns the real process streams and environment */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}

/**
 * Read all of stdin.
 *
 * @param io - the streams
 * @returns every byte
 */
export async function readAll(io: CliIo): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  return Buffer.concat(chunks);
}
