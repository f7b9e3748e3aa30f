import type { Reading } from '@flowpilot/schema';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createApi } from './app.ts';
import { createMemoryLiveFeed } from './live-feed.ts';
import type { MemoryLiveFeed } from './live-feed.ts';
import { DEFAULT_API_OPTIONS } from './options.ts';
import { testPilot, idleInflux } from './test-pilot.ts';

// The keepalive of GET /api/v1/live (SPEC section 5) under fake timers (STYLE habit 7): a
// `: heartbeat` comment every sseHeartbeatMs, and none once the client has gone. Only setInterval
// and clearInterval are faked, so Fastify and light-my-request keep their real timers and ticks.
// app.inject's payloadAsStream answers at the headers, as a browser sees an event stream.

const HEARTBEAT_MS = DEFAULT_API_OPTIONS.sseHeartbeatMs;
const CONNECTED = 'retry: 3000\n: connected\n\n';
const HEARTBEAT = ': heartbeat\n\n';

const influx = idleInflux;

let app: FastifyInstance | undefined;
afterEach(async () => {
  vi.useRealTimers();
  await app?.close();
  app = undefined;
});

/** Lets the stream hand over what the route wrote (the fake timers leave setImmediate real). */
const written = () => new Promise((resolve) => setImmediate(resolve));

async function openStream(feed: MemoryLiveFeed) {
  app = await createApi({ pilot: testPilot(), influx, liveFeed: feed });
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
  const response = await app.inject({ method: 'GET', url: '/api/v1/live', payloadAsStream: true });
  let text = '';
  response.stream().on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  await written();
  return {
    response,
    text: () => text,
    /** The client goes away: its socket closes ('close' on the response, as on a real server). */
    close: () => response.raw.res.destroy(),
  };
}

describe('the heartbeat of GET /api/v1/live', () => {
  it('writes a comment every sseHeartbeatMs, between the readings, and none after the client closed', async () => {
    const feed = createMemoryLiveFeed();
    const stream = await openStream(feed);
    expect(stream.response.statusCode).toBe(200);
    expect(stream.text()).toBe(CONNECTED);
    expect(vi.getTimerCount()).toBe(1);

    vi.advanceTimersByTime(HEARTBEAT_MS - 1);
    await written();
    expect(stream.text()).toBe(CONNECTED);
    vi.advanceTimersByTime(1);
    await written();
    expect(stream.text()).toBe(CONNECTED + HEARTBEAT);

    // A reading does not move the next heartbeat: it is due one interval after the last.
    const reading: Reading = { meterId: 'T-REF', seq: 7, tsMs: Date.now() - 1000, flowM3h: 42.5, totalM3: 1007, alarms: [] };
    vi.advanceTimersByTime(HEARTBEAT_MS / 2);
    feed.publishReading(reading);
    vi.advanceTimersByTime(HEARTBEAT_MS / 2);
    await written();
    const afterReading = stream.text().slice(CONNECTED.length + HEARTBEAT.length);
    expect(afterReading).toMatch(/^event: reading\ndata: \{"meterId":"T-REF","seq":7,.*\}\n\n: heartbeat\n\n$/);

    vi.advanceTimersByTime(3 * HEARTBEAT_MS);
    await written();
    expect(stream.text().split(HEARTBEAT)).toHaveLength(1 + 5);

    stream.close();
    await written();
    expect(feed.listenerCount()).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    const atClose = stream.text();
    vi.advanceTimersByTime(10 * HEARTBEAT_MS);
    await written();
    expect(stream.text()).toBe(atClose);
  });

  it('keeps one interval per open stream, and clears each as its own client closes', async () => {
    const feed = createMemoryLiveFeed();
    const first = await openStream(feed);
    const second = await app!.inject({ method: 'GET', url: '/api/v1/live', payloadAsStream: true });
    let secondText = '';
    second.stream().on('data', (chunk: Buffer) => (secondText += chunk.toString('utf8')));
    expect(vi.getTimerCount()).toBe(2);

    first.close();
    await written();
    expect(vi.getTimerCount()).toBe(1);
    const firstAtClose = first.text();
    vi.advanceTimersByTime(2 * HEARTBEAT_MS);
    await written();
    expect(first.text()).toBe(firstAtClose);
    expect(secondText).toBe(CONNECTED + HEARTBEAT + HEARTBEAT);
    second.raw.res.destroy();
    await written();
    expect(vi.getTimerCount()).toBe(0);
  });
});
