import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InfluxError, type InfluxClient } from '@flowpilot/influx';
import type { DeadLetterInput, DurableStore, SpoolBatch } from '@flowpilot/store';
import type { BackoffOptions } from './backoff.ts';
import { createIngest, type Ingest, type IngestOptions } from './ingest.ts';

/*
 * The ingest's retry policy with fake timers (STYLE habit 7): no InfluxDB, no SQLite. The spool
 * is a queue in memory, InfluxDB a script of answers; the times at which the ingest tries again
 * are read off the fake clock, to the millisecond.
 */

interface FakeSpool {
  store: DurableStore;
  /** A batch appended, as the broker would (the ingest wakes on it). */
  append(lines: string[], meterIds?: string[]): void;
  acknowledged: { lastId: number; deadLetters: readonly DeadLetterInput[] }[];
  depth(): number;
}

function fakeSpool(): FakeSpool {
  const rows: SpoolBatch[] = [];
  const listeners = new Set<() => void>();
  const acknowledged: FakeSpool['acknowledged'] = [];
  let nextId = 1;
  const store: Pick<DurableStore, 'readAfter' | 'acknowledge' | 'depth' | 'onAppended'> = {
    readAfter: (afterId) => rows.find((row) => row.lastId > afterId) ?? null,
    acknowledge(lastId, deadLetters = []) {
      acknowledged.push({ lastId, deadLetters });
      while (rows[0] && rows[0].lastId <= lastId) rows.shift();
    },
    depth: () => ({ records: rows.reduce((n, row) => n + row.lines.length, 0), oldestReceivedAtMs: null }),
    onAppended(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return {
    store: store as DurableStore,
    append(lines, meterIds = lines.map(() => 'M1')) {
      rows.push({ lastId: nextId++, lines, meterIds, oldestReceivedAtMs: 0 });
      for (const listener of listeners) listener();
    },
    acknowledged,
    depth: () => store.depth().records,
  };
}

type Answer = 'ok' | Error | ((lines: readonly string[]) => void);

/** InfluxDB as a script: each write takes the next answer ('ok' once the script ran out), and its time is noted. */
function scriptedInflux(answers: Answer[]): { client: InfluxClient; attemptsAtMs: number[] } {
  const attemptsAtMs: number[] = [];
  const client = {
    config: { url: 'http://scripted', database: 'db' },
    ping: async () => ({ version: 'scripted' }),
    ensureDatabase: async () => {},
    query: async () => [],
    write: async (lines: readonly string[]) => {
      attemptsAtMs.push(Date.now());
      const answer = answers.shift() ?? 'ok';
      if (answer instanceof Error) throw answer;
      if (typeof answer === 'function') answer(lines);
    },
  } as unknown as InfluxClient;
  return { client, attemptsAtMs };
}

const BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 4000, factor: 2, jitter: 0.2 };
const down = (retryAfterMs?: number) => new InfluxError('unavailable', 'connection refused', retryAfterMs === undefined ? {} : { retryAfterMs });
const gaps = (times: number[]) => times.slice(1).map((t, i) => t - times[i]!);

let ingest: Ingest | null = null;
beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});
afterEach(async () => {
  await ingest?.stop();
  ingest = null;
  vi.useRealTimers();
});

/** An ingest on the fake clock: sleeps are fake timers that stopping cuts short. */
function start(spool: FakeSpool, influx: InfluxClient, options: Partial<IngestOptions> = {}): { retries: number[] } {
  const retries: number[] = [];
  ingest = createIngest({
    store: spool.store,
    influx,
    log: pino({ level: 'silent' }),
    backoff: BACKOFF,
    idlePollMs: 60_000,
    clock: { now: () => Date.now() },
    random: () => 0.5, // no jitter unless a test says otherwise
    sleep: (ms, signal) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      }),
    events: { writeFailed: ({ retryInMs }) => retries.push(retryInMs) },
    ...options,
  });
  ingest.start();
  return { retries };
}

describe('ingest backoff (fake timers, no InfluxDB)', () => {
  it('waits longer after each failure, doubling up to the cap, and writes once InfluxDB answers', async () => {
    const spool = fakeSpool();
    spool.append(['l1', 'l2']);
    const influx = scriptedInflux([down(), down(), down(), down(), down(), down()]);
    const { retries } = start(spool, influx.client);

    await vi.advanceTimersByTimeAsync(250 + 500 + 1000 + 2000 + 4000 + 4000 - 1);
    // Six failures so far; the seventh attempt is due in 1 ms, not before.
    expect(influx.attemptsAtMs).toHaveLength(6);
    expect(spool.depth()).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(gaps(influx.attemptsAtMs)).toEqual([250, 500, 1000, 2000, 4000, 4000]);
    expect(retries).toEqual([250, 500, 1000, 2000, 4000, 4000]);
    expect(spool.acknowledged.map((a) => a.lastId)).toEqual([1]);
    expect(spool.depth()).toBe(0);
    expect(ingest!.stats()).toMatchObject({ influxAvailable: true, batchesWritten: 1, linesWritten: 2, writeErrors: { unavailable: 6 }, lastError: null });
  });

  it('starts again from the first delay after a success', async () => {
    const spool = fakeSpool();
    spool.append(['a']);
    const influx = scriptedInflux([down(), down(), down(), 'ok', down(), down()]);
    const { retries } = start(spool, influx.client);
    await vi.advanceTimersByTimeAsync(250 + 500 + 1000);
    expect(spool.depth()).toBe(0);
    spool.append(['b']);
    await vi.advanceTimersByTimeAsync(250 + 500);
    expect(retries).toEqual([250, 500, 1000, 250, 500]);
    expect(spool.depth()).toBe(0);
  });

  it.each([
    ['the shortest', 0, [200, 400, 800, 1600, 3200]],
    ['the longest', 0.999_999, [300, 600, 1200, 2400, 4000]],
  ])('spreads each delay by the jitter: %s draw waits ±20 %%, never beyond the cap', async (_name, draw, expected) => {
    const spool = fakeSpool();
    spool.append(['a']);
    const influx = scriptedInflux([down(), down(), down(), down(), down()]);
    const { retries } = start(spool, influx.client, { random: () => draw });
    await vi.advanceTimersByTimeAsync(expected.reduce((sum, ms) => sum + ms, 0));
    expect(retries).toEqual(expected);
    expect(gaps(influx.attemptsAtMs)).toEqual(expected);
    expect(spool.depth()).toBe(0);
  });

  it('honours a Retry-After longer than its own delay, ignores a shorter one, and caps one beyond the maximum', async () => {
    const spool = fakeSpool();
    spool.append(['a']);
    // Attempt 1 asks for 3 s (instead of 250 ms); attempt 2 for 10 ms (the 500 ms delay stands);
    // attempt 3 for an hour (capped at 4 s).
    const influx = scriptedInflux([down(3000), down(10), down(3_600_000)]);
    const { retries } = start(spool, influx.client);
    await vi.advanceTimersByTimeAsync(3000 + 500 + 4000);
    expect(retries).toEqual([3000, 500, 4000]);
    expect(gaps(influx.attemptsAtMs)).toEqual([3000, 500, 4000]);
    expect(spool.depth()).toBe(0);
  });

  it('keeps retrying on the same schedule when InfluxDB refuses the credentials, and marks InfluxDB unavailable only when it is', async () => {
    const spool = fakeSpool();
    spool.append(['a']);
    const influx = scriptedInflux([new InfluxError('auth', 'unauthorized', { status: 401 }), down()]);
    const { retries } = start(spool, influx.client);
    await vi.advanceTimersByTimeAsync(249);
    expect(ingest!.stats()).toMatchObject({ influxAvailable: true, writeErrors: { auth: 1 }, lastError: expect.stringContaining('unauthorized') as unknown });
    await vi.advanceTimersByTimeAsync(1);
    expect(ingest!.stats()).toMatchObject({ influxAvailable: false, writeErrors: { auth: 1, unavailable: 1 } });
    await vi.advanceTimersByTimeAsync(500);
    expect(retries).toEqual([250, 500]);
    expect(spool.depth()).toBe(0);
  });
});

describe('ingest idle wait (fake timers)', () => {
  it('wakes at once on an append, and leaves no idle timer behind however often it is woken', async () => {
    const spool = fakeSpool();
    const influx = scriptedInflux([]);
    start(spool, influx.client);
    await vi.advanceTimersByTimeAsync(0);
    expect(vi.getTimerCount()).toBe(1);
    for (let i = 0; i < 50; i++) {
      spool.append([`l${i}`]);
      await vi.advanceTimersByTimeAsync(0);
    }
    // Written without waiting for the 60 s poll; one idle sleep pending, not one per wake.
    expect(influx.attemptsAtMs).toHaveLength(50);
    expect(spool.depth()).toBe(0);
    expect(vi.getTimerCount()).toBe(1);
  });
});

describe('ingest bookkeeping from the spool, not from the lines', () => {
  it('keeps each line InfluxDB refuses as a dead letter of the meter the spool kept for it', async () => {
    const spool = fakeSpool();
    // The lines are opaque: which meter a line is of, only the spool says ('' : a row from before meters were kept).
    spool.append(['first', 'refused-a', 'third', 'refused-b'], ['M1', 'M2', 'M2', '']);
    const influx = scriptedInflux(
      Array.from({ length: 8 }, () => (lines: readonly string[]) => {
        const bad = lines.find((line) => line.startsWith('refused'));
        if (bad) throw new InfluxError('bad-lines', `unable to parse '${bad}'`, { status: 400 });
      }),
    );
    start(spool, influx.client);
    await vi.advanceTimersByTimeAsync(0);
    expect(spool.acknowledged).toHaveLength(1);
    expect(spool.acknowledged[0]!.deadLetters.map((d) => [d.payload, d.meterId, d.code])).toEqual([
      ['refused-a', 'M2', 'ERR_INFLUX_REJECTED_LINE'],
      ['refused-b', null, 'ERR_INFLUX_REJECTED_LINE'],
    ]);
    expect(ingest!.stats()).toMatchObject({ linesWritten: 2, linesRejectedByInflux: 2 });
  });
});
