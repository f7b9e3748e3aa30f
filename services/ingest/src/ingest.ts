import { setTimeout as sleepTimer } from 'node:timers/promises';
import type { Logger } from 'pino';
import { InfluxError, writeIsolating, type InfluxClient, type IsolatedWriteResult } from '@flowpilot/influx';
import type { DeadLetterInput, DurableStore, SpoolBatch } from '@flowpilot/store';
import { nextBackoffMs, type BackoffOptions } from './backoff.ts';

/**
 * The ingest: durable store → InfluxDB (SPEC section 6). It reads the spool from its head in
 * order, writes a batch, and removes it from the spool only after InfluxDB confirmed it, so
 * a crash at any moment re-writes at most one batch, which InfluxDB stores as the same points
 * (same series and time: an overwrite). While InfluxDB is down it backs off; the spool holds
 * everything meanwhile. The lines are InfluxDB's and only InfluxDB's: what the ingest needs to
 * know about them (their meter, the meter-days written) comes from the spool beside them.
 */
export interface IngestOptions {
  store: DurableStore;
  influx: InfluxClient;
  log: Logger;
  batchSize: number;
  /** Writes sent before the oldest is confirmed (2: InfluxDB parses one while the next travels). */
  maxBatchesInFlight: number;
  /** How often to look for new records when no in-process append woke us (the standalone ingest). */
  idlePollMs: number;
  backoff: BackoffOptions;
  clock: { now(): number };
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** The backoff's jitter source, 0 <= x < 1 (tests pass a fixed one). */
  random: () => number;
  /** Facts for metrics (past-tense events, STYLE naming). */
  events: IngestEvents;
}

export interface IngestEvents {
  batchWritten?(fact: { lines: number; refused: number; latencyMs: number }): void;
  writeFailed?(fact: { kind: string; retryInMs: number }): void;
}

export const DEFAULT_INGEST_OPTIONS = {
  batchSize: 5000,
  maxBatchesInFlight: 2,
  idlePollMs: 200,
  backoff: { initialMs: 250, maxMs: 30_000, factor: 2, jitter: 0.2 },
  clock: { now: () => Date.now() },
  sleep: (ms: number, signal: AbortSignal) => sleepTimer(ms, undefined, { signal }).catch(() => undefined),
  random: Math.random,
  events: {},
} satisfies Partial<IngestOptions>;

export interface IngestStats {
  batchesWritten: number;
  linesWritten: number;
  linesRejectedByInflux: number;
  writeErrors: Record<string, number>;
  influxAvailable: boolean;
  lastError: string | null;
  lastWriteLatencyMs: number | null;
}

export interface Ingest {
  start(): void;
  /** Finishes the batch in flight (or abandons it to the spool), then resolves. */
  stop(): Promise<void>;
  stats(): IngestStats;
}

export function createIngest(options: Partial<IngestOptions> & Pick<IngestOptions, 'store' | 'influx' | 'log'>): Ingest {
  const settings: IngestOptions = { ...DEFAULT_INGEST_OPTIONS, ...options };
  const { store, influx, log, clock } = settings;
  const stopper = new AbortController();
  const stats: IngestStats = {
    batchesWritten: 0,
    linesWritten: 0,
    linesRejectedByInflux: 0,
    writeErrors: {},
    influxAvailable: true,
    lastError: null,
    lastWriteLatencyMs: null,
  };
  let wake: (() => void) | null = null;
  let running: Promise<void> | null = null;
  let databaseReady = false;
  let failures = 0;
  const unsubscribe = store.onAppended(() => wake?.());

  /**
   * Until an append wakes us, the poll interval passes, or stop(). A wake ends the idle sleep
   * too: under load the ingest waits thousands of times a second, and each left-over sleep
   * would hold a timer and a listener on the stop signal until its interval ran out.
   */
  function waitForRecords(): Promise<void> {
    return new Promise<void>((resolve) => {
      const idle = new AbortController();
      const endIdle = () => idle.abort();
      stopper.signal.addEventListener('abort', endIdle, { once: true });
      let settled = false;
      const done = () => {
        if (settled) return;
        settled = true;
        // Only our own: a later wait may have set its own by the time the idle sleep settles.
        if (wake === done) wake = null;
        stopper.signal.removeEventListener('abort', endIdle);
        idle.abort();
        resolve();
      };
      wake = done;
      void settings.sleep(settings.idlePollMs, idle.signal).then(done);
    });
  }

  function recordFailure(error: unknown): number {
    failures += 1;
    const kind = error instanceof InfluxError ? error.kind : 'unexpected';
    stats.writeErrors[kind] = (stats.writeErrors[kind] ?? 0) + 1;
    stats.lastError = (error as Error).message;
    const delayMs = nextBackoffMs(failures, settings.backoff, error instanceof InfluxError ? error.retryAfterMs() : undefined, settings.random);
    settings.events.writeFailed?.({ kind, retryInMs: delayMs });
    if (error instanceof InfluxError && error.canRetry()) {
      stats.influxAvailable = false;
      if (failures === 1 || failures % 10 === 0) {
        log.warn({ err: error.message, attempt: failures, retryInMs: delayMs, depth: store.depth().records }, 'InfluxDB is unavailable; readings wait in the durable store and will be written when it returns');
      }
    } else {
      // Credentials or a missing database: an operator must act; keep retrying slowly meanwhile.
      log.error({ err: (error as Error).message, retryInMs: delayMs }, 'InfluxDB refused the write; fix the InfluxDB settings (FLOWPILOT_INFLUX_*), nothing is lost meanwhile');
    }
    return delayMs;
  }

  interface BatchInFlight {
    spooled: SpoolBatch;
    startedAt: number;
    write: Promise<IsolatedWriteResult>;
  }

  function send(spooled: SpoolBatch): BatchInFlight {
    const write = writeIsolating(influx, spooled.lines);
    // Settled here too, so a failed write that waits behind an older one is never "unhandled".
    write.catch(() => undefined);
    return { spooled, startedAt: clock.now(), write };
  }

  /** The lines InfluxDB refused, as dead letters of the meter the spool kept beside each line. */
  function refusedLines(spooled: SpoolBatch, result: IsolatedWriteResult, now: number): DeadLetterInput[] {
    if (result.rejected.length === 0) return [];
    const meterOfLine = new Map<string, string>();
    spooled.lines.forEach((line, i) => meterOfLine.set(line, spooled.meterIds[i] ?? ''));
    return result.rejected.map((r) => ({
      receivedAtMs: now,
      topic: '(influxdb write)',
      meterId: meterOfLine.get(r.line) || null,
      clientId: null,
      code: 'ERR_INFLUX_REJECTED_LINE',
      reason: r.reason,
      payload: r.line,
    }));
  }

  /**
   * Removes a confirmed batch from the spool (strictly in order), keeps InfluxDB's refusals, and
   * so logs the meter-days written (the store knows them from what was appended).
   */
  function confirm(batch: BatchInFlight, result: IsolatedWriteResult): void {
    const now = clock.now();
    const refused = refusedLines(batch.spooled, result, now);
    store.acknowledge(batch.spooled.lastId, refused);
    if (refused.length > 0) log.warn({ count: refused.length, first: refused[0]?.reason }, 'InfluxDB refused some lines; they are kept as dead letters (flowpilot deadletters list)');
    stats.batchesWritten += 1;
    stats.linesWritten += result.written;
    stats.linesRejectedByInflux += refused.length;
    stats.lastWriteLatencyMs = now - batch.startedAt;
    settings.events.batchWritten?.({ lines: result.written, refused: refused.length, latencyMs: now - batch.startedAt });
    if (!stats.influxAvailable) log.info({ depth: store.depth().records }, 'InfluxDB is back; draining the durable store');
    stats.influxAvailable = true;
    stats.lastError = null;
    failures = 0;
  }

  /**
   * Keeps up to `maxBatchesInFlight` writes going (InfluxDB works on one while the next is
   * sent), but removes them from the spool strictly in order: a batch is acknowledged only
   * when it and every batch before it were confirmed. After a failure, everything not yet
   * acknowledged is sent again from the spool's head; rewriting a batch InfluxDB already took
   * stores the same points.
   */
  async function run(): Promise<void> {
    const inFlight: BatchInFlight[] = [];
    let readUpTo = 0;
    while (!stopper.signal.aborted) {
      try {
        if (!databaseReady) {
          await influx.ensureDatabase();
          databaseReady = true;
        }
        while (inFlight.length < settings.maxBatchesInFlight) {
          const batch = store.readAfter(readUpTo, settings.batchSize);
          if (!batch) break;
          readUpTo = batch.lastId;
          inFlight.push(send(batch));
        }
        const oldest = inFlight[0];
        if (!oldest) {
          await waitForRecords();
          continue;
        }
        confirm(oldest, await oldest.write);
        inFlight.shift();
      } catch (error) {
        await Promise.allSettled(inFlight.map((batch) => batch.write));
        inFlight.length = 0;
        readUpTo = 0;
        await settings.sleep(recordFailure(error), stopper.signal);
      }
    }
    // Stopping: let the writes under way finish, and keep what InfluxDB confirmed in order.
    for (const batch of inFlight) {
      const outcome = await batch.write.then(
        (result) => result,
        () => null,
      );
      if (!outcome) break;
      confirm(batch, outcome);
    }
  }

  return {
    start() {
      running ??= run();
    },
    async stop() {
      stopper.abort();
      wake?.();
      unsubscribe();
      await running;
    },
    stats: () => ({ ...stats, writeErrors: { ...stats.writeErrors } }),
  };
}
