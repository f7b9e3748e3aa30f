import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * A loopback TCP proxy in front of a real server, for fault tests: `down()` cuts every
 * connection and refuses new ones (as a stopped server would), `up()` forwards again.
 * It counts connection attempts, so a test can tell a backoff from a hot retry loop.
 */
export interface TcpProxy {
  url: string;
  attempts(): number;
  /** The most connections open at once. */
  maxConcurrent(): number;
  /** Delay everything the server answers by this much (a slow InfluxDB). */
  setResponseDelay(ms: number): void;
  down(): void;
  up(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetUrl: string): Promise<TcpProxy> {
  const target = new URL(targetUrl);
  const sockets = new Set<Socket>();
  let isUp = true;
  let attempts = 0;
  let open = 0;
  let maxConcurrent = 0;
  let responseDelayMs = 0;
  const server = createServer((client) => {
    attempts += 1;
    open += 1;
    maxConcurrent = Math.max(maxConcurrent, open);
    client.once('close', () => (open -= 1));
    if (!isUp) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      if (responseDelayMs === 0) client.write(chunk);
      else setTimeout(() => client.writable && client.write(chunk), responseDelayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${target.protocol}//127.0.0.1:${port}`,
    attempts: () => attempts,
    maxConcurrent: () => maxConcurrent,
    setResponseDelay(ms) {
      responseDelayMs = ms;
    },
    down() {
      isUp = false;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    up() {
      isUp = true;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
