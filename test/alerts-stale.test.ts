import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { createApi, createMqttLiveFeed } from '@flowpilot/api';
import type { Alert, AlertTransition, LiveFeed } from '@flowpilot/api';
import { pipelineReadiness } from '@flowpilot/cli';
import { parsePilotConfig } from '@flowpilot/schema';
import type { PilotConfig } from '@flowpilot/schema';
import type { FastifyInstance } from 'fastify';
import { createTestInflux } from './helpers/influx.ts';
import { connectMeter, startTestPipeline, wireReading, type TestPipeline } from './helpers/pipeline.ts';
import { eventually } from './helpers/wait.ts';

/*
 * SPEC section 9 `stale` end to end, through real parts: MQTT.js meters → Aedes broker →
 * durable store → ingest → influxd, and the API's live feed subscribed to the broker with the
 * alert engine in it, its alerts in SQLite in a data dir. Meters report every second; the pilot
 * keeps the default 3 intervals. STALE-A stops publishing: `stale` fires after 3 intervals
 * (seen in GET /api/v1/alerts and told to the sink), survives a restart of the API (same alert,
 * no second "fired"), and resolves when the meter returns. STALE-B publishes throughout and
 * never goes stale (its own staleIntervals, 10, leaves room for a slow machine). flapMinutes is 0.1 (6 s) so the held-back "resolved" is seen too.
 *
 * No timing assertions: the waits are bounded polls; the delays are printed for the issue's
 * closing note (time from the condition to the notification).
 */

const INTERVAL_SEC = 1;
const FLAP_MINUTES = 0.1;

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Notification {
  atMs: number;
  transition: AlertTransition;
}

/** A meter publishing one reading each interval (QoS 1), remembering when the broker acknowledged the last. */
function publishEvery(client: MqttClient, meterId: string, startSeq: number): { stop(): Promise<void>; lastAckedMs(): number } {
  let seq = startSeq;
  let lastAckedMs = 0;
  let pending: Promise<unknown> = Promise.resolve();
  const publish = () => {
    seq += 1;
    const payload = JSON.stringify(wireReading(meterId, seq, Date.now()));
    pending = client.publishAsync(`meters/${meterId}/readings`, payload, { qos: 1 }).then(() => (lastAckedMs = Date.now()));
  };
  publish();
  const timer = setInterval(publish, INTERVAL_SEC * 1000);
  return {
    async stop() {
      clearInterval(timer);
      await pending;
    },
    lastAckedMs: () => lastAckedMs,
  };
}

interface ApiWorld {
  app: FastifyInstance;
  feed: LiveFeed;
  notifications: Notification[];
  close(): Promise<void>;
}

async function startApi(pilot: PilotConfig, pipeline: TestPipeline, influx: Awaited<ReturnType<typeof createTestInflux>>, dataDir: string, name: string): Promise<ApiWorld> {
  const feed = createMqttLiveFeed({ mqttUrl: pipeline.mqttUrl, username: 'svc', password: 'svc-password', clientId: `svc:${name}`, pilot, reconnectPeriodMs: 200 });
  await eventually(() => feed.connected(), Boolean, 10_000, 'the live feed to connect');
  const notifications: Notification[] = [];
  const app = await createApi({
    pilot,
    influx,
    liveFeed: feed,
    readinessChecks: pipelineReadiness(pipeline.store, pipeline.ingest, 120_000),
    alerts: {
      dataDir,
      evaluateEveryMs: 250,
      sinks: [{ notify: (transition) => notifications.push({ atMs: Date.now(), transition }) }],
      storeLagMs: () => {
        const oldest = pipeline.store.depth().oldestReceivedAtMs;
        return oldest === null ? 0 : Date.now() - oldest;
      },
    },
  });
  await app.ready();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await app.close();
    await feed.close();
  };
  cleanups.push(close);
  return { app, feed, notifications, close };
}

async function alerts(app: FastifyInstance, query = ''): Promise<Alert[]> {
  const response = await app.inject(`/api/v1/alerts${query}`);
  expect(response.statusCode).toBe(200);
  return (response.json() as { alerts: Alert[] }).alerts;
}

const staleOf = (list: Alert[], meterId: string) => list.filter((a) => a.rule === 'stale' && a.meterId === meterId);

describe('alerts end to end through the broker: stale', () => {
  it('a meter that stops publishing fires stale after 3 intervals, survives an API restart, and resolves when it returns', async () => {
    const influx = await createTestInflux();
    const pilot = parsePilotConfig(`
pilot: { id: alerts-e2e, name: Alerts end to end, timezone: Asia/Almaty }
meters:
  - { id: STALE-A, site: S, role: monitor, intervalSec: ${INTERVAL_SEC} }
  - { id: STALE-B, site: S, role: monitor, intervalSec: ${INTERVAL_SEC} }
alerts:
  flapMinutes: ${FLAP_MINUTES}
  meters: { STALE-B: { staleIntervals: 10 } }
`);
    const pipeline = await startTestPipeline({ pilot, influx });
    cleanups.push(() => pipeline.close());
    const dataDir = mkdtempSync(join(tmpdir(), 'flowpilot-alerts-e2e-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    await pipeline.credentials.add('svc', 'service', 'svc-password');
    await pipeline.credentials.add('STALE-A', 'meter', 'pw-a');
    await pipeline.credentials.add('STALE-B', 'meter', 'pw-b');
    const meterA = await connectMeter(pipeline.mqttUrl, 'STALE-A', 'pw-a');
    cleanups.push(() => meterA.endAsync(true));
    const meterB = await connectMeter(pipeline.mqttUrl, 'STALE-B', 'pw-b');
    cleanups.push(() => meterB.endAsync(true));

    const first = await startApi(pilot, pipeline, influx, dataDir, 'api-1');
    const b = publishEvery(meterB, 'STALE-B', 0);
    cleanups.push(() => b.stop());
    let a = publishEvery(meterA, 'STALE-A', 0);
    cleanups.push(() => a.stop());
    // Both report for a while: nothing fires.
    await eventually(() => first.feed.state('STALE-A')?.lastReading?.seq ?? 0, (seq) => seq >= 5, 15_000, 'five readings of STALE-A');
    expect(await alerts(first.app)).toEqual([]);

    // STALE-A goes silent.
    await a.stop();
    const silentFromMs = a.lastAckedMs();
    const fired = await eventually(() => alerts(first.app, '?state=firing'), (list) => staleOf(list, 'STALE-A').length === 1, 20_000, (list) => `stale of STALE-A, got ${JSON.stringify(list)}`);
    const [alert] = staleOf(fired, 'STALE-A') as [Alert];
    expect(alert).toMatchObject({ state: 'firing', until: null, details: { threshold: 3, intervalSec: INTERVAL_SEC } });
    expect(alert.message).toMatch(/^Meter STALE-A sent no reading for more than 3 intervals of 1 s/);
    // The alert begins 3 intervals after the last reading arrived, as the rule says.
    const lastReadingAtMs = Date.parse(String(alert.details.lastReadingAt));
    expect(Date.parse(alert.since) - lastReadingAtMs).toBe(3 * INTERVAL_SEC * 1000);
    await eventually(() => first.notifications.length, (n) => n >= 1, 5_000, 'the "fired" notification');
    const firedNote = first.notifications[0] as Notification;
    expect(firedNote.transition).toMatchObject({ kind: 'fired', alert: { id: alert.id, rule: 'stale', meterId: 'STALE-A' } });
    console.log(
      `[stale] last reading acknowledged ${new Date(silentFromMs).toISOString()}, condition from ${alert.since} (3 × ${INTERVAL_SEC} s after it arrived); ` +
        `"fired" told ${firedNote.atMs - Date.parse(alert.since)} ms after the condition began (evaluation every 250 ms)`,
    );
    // STALE-B kept publishing: never stale.
    expect(staleOf(await alerts(first.app), 'STALE-B')).toEqual([]);

    // The API restarts while the alert fires: the same alert continues, with no second "fired".
    await first.close();
    const second = await startApi(pilot, pipeline, influx, dataDir, 'api-2');
    expect(staleOf(await alerts(second.app, '?state=firing'), 'STALE-A')).toMatchObject([{ id: alert.id, since: alert.since }]);
    // Longer than 3 intervals after the restart, so the new process judged the silence itself.
    await eventually(() => second.feed.connected(), Boolean, 5_000, 'the second feed to connect');
    await new Promise((resolve) => setTimeout(resolve, 4 * INTERVAL_SEC * 1000));
    expect(staleOf(await alerts(second.app, '?state=firing'), 'STALE-A')).toMatchObject([{ id: alert.id }]);
    expect(second.notifications).toEqual([]);

    // STALE-A returns: resolved at once in the API; the "resolved" is told once it stayed resolved for flapMinutes.
    const returnedAtMs = Date.now();
    a = publishEvery(meterA, 'STALE-A', 1000);
    const resolved = await eventually(() => alerts(second.app), (list) => staleOf(list, 'STALE-A')[0]?.state === 'resolved', 20_000, (list) => `STALE-A resolved, got ${JSON.stringify(list)}`);
    const [done] = staleOf(resolved, 'STALE-A') as [Alert];
    expect(done).toMatchObject({ id: alert.id, state: 'resolved', since: alert.since });
    expect(done.until).not.toBeNull();
    expect(staleOf(await alerts(second.app, '?state=firing'), 'STALE-A')).toEqual([]);
    const resolvedNote = await eventually(
      () => second.notifications.find((n) => n.transition.kind === 'resolved'),
      (note) => note !== undefined,
      FLAP_MINUTES * 60_000 + 15_000,
      'the "resolved" notification',
    );
    expect(resolvedNote?.transition.alert).toMatchObject({ id: alert.id, state: 'resolved', until: done.until });
    expect(second.notifications.map((n) => n.transition.kind)).toEqual(['resolved']);
    console.log(
      `[stale] STALE-A published again at ${new Date(returnedAtMs).toISOString()}; resolved in the API at ${done.until} ` +
        `(${Date.parse(String(done.until)) - returnedAtMs} ms after the first new publish); "resolved" told ${(resolvedNote as Notification).atMs - Date.parse(String(done.until))} ms after that ` +
        `(held back flapMinutes = ${FLAP_MINUTES * 60} s)`,
    );
    await a.stop();
    await b.stop();
  });
});
