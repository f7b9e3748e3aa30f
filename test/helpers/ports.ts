import { connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { eventually } from './wait.ts';

/**
 * Loopback ports for a test's or a bench run's own services (STYLE habit 9: never fixed
 * ports). A port is free when asked for; whoever needs it binds it right after.
 */

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Whether 127.0.0.1:port accepts a TCP connection now; a connect that hangs counts as no after 1 s. */
export function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.setTimeout(1_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface WaitForPortOptions {
  /** Whether the process that should listen still runs: the wait fails as soon as it is false. */
  alive?: () => boolean;
  /** What should listen, for the error message. */
  what?: string;
}

/** Waits until 127.0.0.1:port accepts a TCP connection, at most `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number, options: WaitForPortOptions = {}): Promise<void> {
  const what = options.what ?? 'a listener';
  await eventually(
    () => {
      if (options.alive && !options.alive()) throw new Error(`${what} exited before listening on port ${port}`);
      return portAccepts(port);
    },
    Boolean,
    timeoutMs,
    `${what} on port ${port}`,
    100,
  );
}
