import { setTimeout as sleep } from 'node:timers/promises';
import type { MqttClient } from 'mqtt';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Alert, AlertRule } from '@flowpilot/api';
import { createInfluxClient } from '@flowpilot/influx';
import { addDays, localDate, localMidnightMs, localNights } from '@flowpilot/metrics';
import type { LocalNight } from '@flowpilot/metrics';
import { ALERTS_WORLD_TIMING, startAlertsWorld } from './helpers/alerts-world.ts';
import type { AlertsWorld, WebhookDelivery } from './helpers/alerts-world.ts';
import { createTestInflux } from './helpers/influx.ts';
import { storedPairs, wireReading } from './helpers/pipeline.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';
import { eventually } from './helpers/wait.ts';

/*
 * SPEC section 9, every rule but `stale` (test/alerts-stale.test.ts) end to end, each in a world
 * of its own (test/helpers/alerts-world.ts, wired as `flowpilot start` wires it): real MQTT
 * meters publish SPEC section 1 readings and statuses to FlowPilot's Aedes broker, through the
 * durable store and the ingest into the test's own influxd database; the API evaluates the rules
 * and the notifier delivers to a real webhook receiver that verifies X-FlowPilot-Signature (and,
 * for `alarm`, to a real SMTP server). For each rule: create the condition, wait for the "fired"
 * webhook, see the alert firing in GET /api/v1/alerts with its meter, remove the condition, see
 * it resolved there and wait for the "resolved" webhook, held back flapMinutes (3 s here).
 *
 * No timing assertions: the waits are bounded polls. The delays are printed, one line per rule,
 * for the issue's closing note: from the moment the condition was created (stated per rule) to
 * the webhook receiving "fired", and from the moment it was removed to "resolved".
 */

const FLAP_MINUTES = 0.05;
const FLAP_MS = FLAP_MINUTES * 60_000;
const FIRED_WITHIN_MS = 20_000;
const RESOLVED_WITHIN_MS = FLAP_MS + 20_000;

/**
 * A fixed-offset zone in which it is about noon now. Days and nights are local (SPEC section 3):
 * at local noon the latest night window (02:00–04:00) ended hours ago and local midnight is hours
 * away, so the `leak` and `totalizer` facts ("the latest night", "yesterday") cannot change under
 * a test that runs a few seconds, whenever it runs.
 */
function noonZone(nowMs: number): string {
  const offsetHours = 12 - new Date(nowMs).getUTCHours(); // −11 … +12, all of them Etc/GMT zones
  // POSIX signs: Etc/GMT-5 is UTC+5.
  return offsetHours === 0 ? 'Etc/GMT' : `Etc/GMT${offsetHours > 0 ? '-' : '+'}${Math.abs(offsetHours)}`;
}
const ZONE = noonZone(Date.now());

function pilotFile(meters: readonly string[], alerts: readonly string[] = []): string {
  return [
    `pilot: { id: alerts-rules, name: Alerts end to end, timezone: "${ZONE}", nightWindow: { start: "02:00", end: "04:00" } }`,
    'meters:',
    ...meters.map((meter) => `  - ${meter}`),
    'alerts:',
    `  flapMinutes: ${FLAP_MINUTES}`,
    ...alerts.map((line) => `  ${line}`),
  ].join('\n');
}

async function publishReadings(meter: MqttClient, meterId: string, payload: unknown): Promise<number> {
  await meter.publishAsync(`meters/${meterId}/readings`, JSON.stringify(payload), { qos: 1 });
  return Date.now();
}

const of = (list: Alert[], rule: AlertRule, meterId: string | null) => list.filter((a) => a.rule === rule && a.meterId === meterId);

interface RuleRun {
  rule: AlertRule;
  meterId: string | null;
  /** When the condition was created, and when it was removed (epoch ms). */
  conditionMs: number;
  removedMs: number;
  fired: WebhookDelivery;
}

/**
 * Once the condition is created: the "fired" webhook, signed, about the right meter; the alert
 * firing in GET /api/v1/alerts. Answers the alert.
 */
async function expectFired(world: AlertsWorld, rule: AlertRule, meterId: string | null): Promise<{ fired: WebhookDelivery; alert: Alert }> {
  const fired = await world.delivery(rule, meterId, 'fired', FIRED_WITHIN_MS);
  expect(fired).toMatchObject({ signatureValid: true, pilot: { id: 'alerts-rules' }, alert: { rule, meterId, state: 'firing', until: null } });
  const firing = of(await world.alerts('?state=firing'), rule, meterId);
  expect(firing).toMatchObject([{ id: fired.alert.id, rule, meterId, state: 'firing', until: null }]);
  return { fired, alert: firing[0] as Alert };
}

/**
 * Once the condition is removed: the alert resolved in GET /api/v1/alerts, then the "resolved"
 * webhook (held back flapMinutes); the receiver got exactly one "fired" and one "resolved" of it,
 * every delivery signed. Prints the rule's line for the closing note.
 */
async function expectResolved(world: AlertsWorld, run: RuleRun, note = ''): Promise<void> {
  const { rule, meterId, fired } = run;
  const list = await eventually(
    () => world.alerts(),
    (alerts) => of(alerts, rule, meterId)[0]?.state === 'resolved',
    RESOLVED_WITHIN_MS,
    (alerts) => `${rule} of ${meterId ?? 'the pipeline'} resolved in the API, got ${JSON.stringify(of(alerts, rule, meterId))}`,
  );
  const [done] = of(list, rule, meterId) as [Alert];
  expect(done).toMatchObject({ id: fired.alert.id, since: fired.alert.since, state: 'resolved' });
  expect(done.until).not.toBeNull();
  const resolved = await world.delivery(rule, meterId, 'resolved', RESOLVED_WITHIN_MS);
  expect(resolved).toMatchObject({ signatureValid: true, alert: { id: fired.alert.id, state: 'resolved', until: done.until } });
  // One message when it fires and one when it resolves (SPEC section 9), all signed.
  expect(world.webhook.deliveries.filter((d) => d.alert.rule === rule && d.alert.meterId === meterId).map((d) => d.event)).toEqual(['fired', 'resolved']);
  expect(world.webhook.deliveries.every((d) => d.signatureValid)).toBe(true);
  expect(new Set(world.webhook.deliveries.map((d) => d.deliveryId)).size).toBe(world.webhook.deliveries.length);
  console.log(
    `[alert ${rule}] condition → fired notification ${fired.atMs - run.conditionMs} ms, → resolved notification ${resolved.atMs - run.removedMs} ms` +
      ` (the resolved one held back flapMinutes = ${FLAP_MS / 1000} s${note ? `; ${note}` : ''})`,
  );
}

/** The rules that fired in the world, as the webhook was told. */
const rulesTold = (world: AlertsWorld) => [...new Set(world.webhook.deliveries.map((d) => `${d.alert.rule}/${d.alert.meterId ?? '-'}`))].sort();

describe('alerts end to end through the broker, one rule at a time (SPEC section 9)', () => {
  it('offline: the last will of a meter whose connection dies fires it; the meter back online resolves it', async () => {
    const world = await startAlertsWorld({ influx: await createTestInflux(), pilotFile: pilotFile(['{ id: OFF-1, site: S, role: monitor, intervalSec: 60 }']) });
    const will = { topic: 'meters/OFF-1/status', payload: Buffer.from('{"online":false}'), qos: 1 as const, retain: true };
    const meter = await world.meter('OFF-1', { will });
    await meter.publishAsync('meters/OFF-1/status', JSON.stringify({ online: true, ts: new Date().toISOString(), firmware: '2.1.0' }), { qos: 1, retain: true });
    await eventually(() => world.feed().state('OFF-1')?.status?.online, (online) => online === true, 10_000, 'the API to see OFF-1 online');
    expect(await world.alerts()).toEqual([]);

    // The connection dies without a DISCONNECT: the broker publishes the will [MQTT-3.1.2-8].
    const conditionMs = Date.now();
    meter.stream.destroy();
    const { fired, alert } = await expectFired(world, 'offline', 'OFF-1');
    expect(alert.message).toMatch(/^Meter OFF-1 is offline: its status says online: false since /);

    // The meter reconnects and says it is online again.
    const removedMs = Date.now();
    const back = await world.meter('OFF-1', { will });
    await back.publishAsync('meters/OFF-1/status', JSON.stringify({ online: true, ts: new Date().toISOString(), firmware: '2.1.0' }), { qos: 1, retain: true });
    await expectResolved(world, { rule: 'offline', meterId: 'OFF-1', conditionMs, removedMs, fired }, 'condition: the socket destroyed; removed: the reconnect');
    expect(rulesTold(world)).toEqual(['offline/OFF-1']);
  });

  it('offline: a meter whose clock runs ahead and whose connection dies right after a reading fires it too', async () => {
    // Within SPEC section 1's 5 minutes: its readings' ts are later than the will, which has no ts and is timed on receipt.
    const aheadMs = 60_000;
    const world = await startAlertsWorld({ influx: await createTestInflux(), pilotFile: pilotFile(['{ id: OFF-2, site: S, role: monitor, intervalSec: 60 }']) });
    const will = { topic: 'meters/OFF-2/status', payload: Buffer.from('{"online":false}'), qos: 1 as const, retain: true };
    const meter = await world.meter('OFF-2', { will });
    await meter.publishAsync('meters/OFF-2/status', JSON.stringify({ online: true, ts: new Date(Date.now() + aheadMs).toISOString() }), { qos: 1, retain: true });
    await publishReadings(meter, 'OFF-2', wireReading('OFF-2', 1, Date.now() + aheadMs));
    await eventually(() => world.feed().state('OFF-2')?.lastReading?.seq, (seq) => seq === 1, 10_000, 'the API to see OFF-2\'s reading');

    meter.stream.destroy();
    const { alert } = await expectFired(world, 'offline', 'OFF-2');
    expect(alert.meterId).toBe('OFF-2');

    // Back with a reading (no status): received after the will, so online again.
    const back = await world.meter('OFF-2', { will });
    await publishReadings(back, 'OFF-2', wireReading('OFF-2', 2, Date.now() + aheadMs));
    await eventually(() => world.alerts(), (list) => of(list, 'offline', 'OFF-2')[0]?.state === 'resolved', 10_000, 'the offline alert of OFF-2 resolved in the API');
  });

  it('leak: a backfilled night whose mean flow exceeds leakM3h fires it; a quiet night after it resolves it', async () => {
    const intervalSec = 600;
    const world = await startAlertsWorld({
      influx: await createTestInflux(),
      pilotFile: pilotFile([`{ id: LEAK-1, site: S, role: monitor, intervalSec: ${intervalSec}, leakM3h: 1 }`]),
    });
    // The two latest local nights inside the rule's look-back (50 h): the leaky one, then the quiet one.
    const nowMs = Date.now();
    const nights = localNights({ fromMs: nowMs - 48 * 3_600_000, toMs: nowMs }, world.pilot.pilot);
    const [leakyNight, quietNight] = nights.slice(-2) as [LocalNight, LocalNight];
    let seq = 0;
    let total = 500;
    /** A night's readings every interval, flow steady, the total stepping as ∫flow dt (consistent: no totalizer alert). */
    const night = (window: LocalNight, flowM3h: number) => {
      const readings: Record<string, unknown>[] = [];
      for (let tsMs = window.fromMs; tsMs < window.toMs; tsMs += intervalSec * 1000) {
        readings.push({ ...wireReading('LEAK-1', seq++, tsMs), flow: flowM3h, total: Number(total.toFixed(6)) });
        total += (flowM3h * intervalSec) / 3600;
      }
      return readings;
    };
    const meter = await world.meter('LEAK-1');

    // The meter forwards the night it stored (SPEC section 1 backfill array): 3 m³/h all night.
    const conditionMs = await publishReadings(meter, 'LEAK-1', night(leakyNight, 3));
    const { fired, alert } = await expectFired(world, 'leak', 'LEAK-1');
    expect(alert.details).toEqual({ threshold: 1, value: 3, night: leakyNight.night });

    // The leak is repaired: the next night, the latest, flows 0.2 m³/h.
    const quiet = night(quietNight, 0.2);
    const removedMs = Date.now();
    await publishReadings(meter, 'LEAK-1', quiet);
    await expectResolved(world, { rule: 'leak', meterId: 'LEAK-1', conditionMs, removedMs, fired }, 'condition: PUBACK of the leaky night\'s backfill; removed: the quiet night\'s publish');
    expect(rulesTold(world)).toEqual(['leak/LEAK-1']);
  });

  it('alarm: a reading with empty_pipe fires it, told by webhook and by e-mail; a reading without resolves it', async () => {
    const world = await startAlertsWorld({ influx: await createTestInflux(), email: true, pilotFile: pilotFile(['{ id: ALM-1, site: S, role: monitor, intervalSec: 60 }']) });
    const meter = await world.meter('ALM-1');
    await publishReadings(meter, 'ALM-1', wireReading('ALM-1', 1, Date.now()));
    await eventually(() => world.feed().state('ALM-1')?.lastReading?.seq, (seq) => seq === 1, 10_000, 'the API to see ALM-1\'s first reading');

    const conditionMs = Date.now();
    await publishReadings(meter, 'ALM-1', wireReading('ALM-1', 2, Date.now(), { alarms: ['empty_pipe'] }));
    const { fired, alert } = await expectFired(world, 'alarm', 'ALM-1');
    expect(alert).toMatchObject({ message: 'Meter ALM-1 reports the alarm empty_pipe', details: { alarm: 'empty_pipe' } });

    const removedMs = Date.now();
    await publishReadings(meter, 'ALM-1', wireReading('ALM-1', 3, Date.now()));
    await expectResolved(world, { rule: 'alarm', meterId: 'ALM-1', conditionMs, removedMs, fired }, 'condition and removal: the readings\' publish');
    expect(rulesTold(world)).toEqual(['alarm/ALM-1']);

    // The same two, mailed through the SMTP server: one thread, fire then resolve.
    const smtp = world.smtp as NonNullable<AlertsWorld['smtp']>;
    const mails = await eventually(() => smtp.mails, (m) => m.length >= 2, 10_000, (m) => `two mails, got ${m.length}`);
    expect(mails.map((m) => [m.headers.get('x-flowpilot-alert'), m.recipients])).toEqual([
      [alert.id, ['ops@example.org', 'field@example.org']],
      [alert.id, ['ops@example.org', 'field@example.org']],
    ]);
    const [fireMail, resolveMail] = mails as [(typeof mails)[number], (typeof mails)[number]];
    expect(fireMail.headers.get('message-id')).toBe(`<${alert.id}.fired.alerts-rules@flowpilot>`);
    expect(resolveMail.headers.get('in-reply-to')).toBe(fireMail.headers.get('message-id'));
    console.log(`[alert alarm] e-mail: "fired" mailed ${fireMail.atMs - conditionMs} ms after the condition, "resolved" ${resolveMail.atMs - removedMs} ms after its removal`);
  });

  it('low_battery: a reading with battery 15 fires it; a fresh battery resolves it', async () => {
    const world = await startAlertsWorld({ influx: await createTestInflux(), pilotFile: pilotFile(['{ id: BAT-1, site: S, role: monitor, intervalSec: 60 }']) });
    const meter = await world.meter('BAT-1');
    await publishReadings(meter, 'BAT-1', wireReading('BAT-1', 1, Date.now(), { battery: 64 }));
    await eventually(() => world.feed().state('BAT-1')?.lastReading?.seq, (seq) => seq === 1, 10_000, 'the API to see BAT-1\'s first reading');

    const conditionMs = Date.now();
    await publishReadings(meter, 'BAT-1', wireReading('BAT-1', 2, Date.now(), { battery: 15 }));
    const { fired, alert } = await expectFired(world, 'low_battery', 'BAT-1');
    expect(alert).toMatchObject({ message: 'Meter BAT-1: battery at 15 %, below 20 %', details: { threshold: 20, value: 15 } });

    const removedMs = Date.now();
    await publishReadings(meter, 'BAT-1', wireReading('BAT-1', 3, Date.now(), { battery: 98 }));
    await expectResolved(world, { rule: 'low_battery', meterId: 'BAT-1', conditionMs, removedMs, fired }, 'condition and removal: the readings\' publish');
    expect(rulesTold(world)).toEqual(['low_battery/BAT-1']);
  });

  it('totalizer: a day whose ∫flow dt is 17 % short of the total\'s steps fires it; the day re-sent consistent resolves it', async () => {
    const intervalSec = 3600;
    const world = await startAlertsWorld({ influx: await createTestInflux(), pilotFile: pilotFile([`{ id: TOT-1, site: S, role: monitor, intervalSec: ${intervalSec} }`]) });
    // The last complete local day, hour by hour from its midnight to the next (25 readings).
    const today = localDate(ZONE, Date.now());
    const yesterday = addDays(today, -1);
    const fromMs = localMidnightMs(ZONE, yesterday);
    const toMs = localMidnightMs(ZONE, today);
    const day = (stepM3: number) => {
      const readings: Record<string, unknown>[] = [];
      for (let i = 0, tsMs = fromMs; tsMs <= toMs; i++, tsMs += intervalSec * 1000) readings.push({ ...wireReading('TOT-1', i, tsMs), flow: 10, total: 2000 + i * stepM3 });
      return readings;
    };
    const meter = await world.meter('TOT-1');

    // Flow 10 m³/h all day, but the totalizer steps 12 m³ an hour: ∫flow dt = 240 m³ against 288 m³, −16.67 %.
    const conditionMs = await publishReadings(meter, 'TOT-1', day(12));
    const { fired, alert } = await expectFired(world, 'totalizer', 'TOT-1');
    expect(alert.details).toEqual({ threshold: 2, value: -16.67, date: yesterday });

    // The same readings re-sent with the totalizer stepping 10 m³ an hour (same meter and ts: one point each, SPEC section 2).
    const removedMs = Date.now();
    await publishReadings(meter, 'TOT-1', day(10));
    await expectResolved(world, { rule: 'totalizer', meterId: 'TOT-1', conditionMs, removedMs, fired }, 'condition: PUBACK of the day\'s backfill; removed: the corrected day\'s publish');
    expect(rulesTold(world)).toEqual(['totalizer/TOT-1']);
  });

  it('rejected: the 11th invalid message within an hour fires it; an hour later (the API\'s clock) it resolves', async () => {
    const world = await startAlertsWorld({ influx: await createTestInflux(), pilotFile: pilotFile(['{ id: REJ-1, site: S, role: monitor, intervalSec: 60 }']) });
    const meter = await world.meter('REJ-1');
    // A schema violation (flow is text): accepted with a PUBACK and kept as a dead letter (SPEC section 6).
    const invalid = (seq: number) => ({ ...wireReading('REJ-1', seq, Date.now()), flow: 'fast' });
    for (let seq = 1; seq <= 10; seq++) await publishReadings(meter, 'REJ-1', invalid(seq));
    expect(world.pipeline.store.rejectionCountsByMeter(Date.now() - 3_600_000, Date.now() + 1)).toEqual({ 'REJ-1': { ERR_READING_SCHEMA: 10 } });
    // Ten is the threshold, not above it: several reads of the counts later, nothing fires.
    await sleep(4 * ALERTS_WORLD_TIMING.rejectionsEveryMs);
    expect(await world.alerts()).toEqual([]);

    const conditionMs = await publishReadings(meter, 'REJ-1', invalid(11));
    const { fired, alert } = await expectFired(world, 'rejected', 'REJ-1');
    expect(alert.details).toEqual({ threshold: 10, value: 11 });

    // The dead letters leave the hour only an hour later: the API restarts on a clock 61 minutes
    // ahead, which stands in for that hour (and shows the alert survives a restart).
    const removedMs = Date.now();
    await world.restartApi({ clockOffsetMs: 61 * 60_000 });
    await expectResolved(world, { rule: 'rejected', meterId: 'REJ-1', conditionMs, removedMs, fired }, 'condition: PUBACK of the 11th invalid message; removed: an API restart 61 min ahead');
    expect(rulesTold(world)).toEqual(['rejected/REJ-1']);
  });

  it('store_lag: readings that wait for an unreachable InfluxDB longer than storeLagSec fire it; InfluxDB back, drained, resolves it', async () => {
    const storeLagSec = 1;
    const direct = await createTestInflux();
    const proxy = await startTcpProxy(direct.config.url);
    onTestFinished(() => proxy.close());
    // The ingest reaches InfluxDB through the proxy, the API directly: only the ingest loses it.
    const ingestInflux = createInfluxClient({ url: proxy.url, database: direct.config.database, timeoutMs: 2_000 });
    const world = await startAlertsWorld({
      influx: direct,
      ingestInflux,
      pilotFile: pilotFile(['{ id: LAG-1, site: S, role: monitor, intervalSec: 60 }'], [`storeLagSec: ${storeLagSec}`]),
    });
    const meter = await world.meter('LAG-1');
    await publishReadings(meter, 'LAG-1', wireReading('LAG-1', 1, Date.now()));
    await eventually(() => storedPairs(direct), (s) => s.points === 1, 10_000, 'the first reading in InfluxDB');

    proxy.down();
    const ackedMs = await publishReadings(meter, 'LAG-1', wireReading('LAG-1', 2, Date.now()));
    // The condition begins when the reading has waited storeLagSec (from its PUBACK, a few ms after the store took it).
    const conditionMs = ackedMs + storeLagSec * 1000;
    const { fired, alert } = await expectFired(world, 'store_lag', null);
    expect(alert.details).toMatchObject({ threshold: storeLagSec });
    expect(world.pipeline.store.depth().records).toBe(1);
    // The ingest's failing writes are InfluxDB down for the pipeline too: influx_down fired before it.
    await world.delivery('influx_down', null, 'fired', FIRED_WITHIN_MS);

    const removedMs = Date.now();
    proxy.up();
    await eventually(() => storedPairs(direct), (s) => s.points === 2, 30_000, 'the waiting reading in InfluxDB');
    await expectResolved(world, { rule: 'store_lag', meterId: null, conditionMs, removedMs, fired }, 'condition: PUBACK + storeLagSec; removed: InfluxDB reachable again, incl. the ingest\'s backoff');
    expect(rulesTold(world)).toEqual(['influx_down/-', 'store_lag/-']);
  });

  it('influx_down: InfluxDB unreachable fires it; reachable again resolves it', async () => {
    const direct = await createTestInflux();
    const proxy = await startTcpProxy(direct.config.url);
    onTestFinished(() => proxy.close());
    // The API and the ingest reach InfluxDB through the proxy, as both would reach a remote one.
    const influx = createInfluxClient({ url: proxy.url, database: direct.config.database, timeoutMs: 2_000 });
    const world = await startAlertsWorld({ influx, pilotFile: pilotFile(['{ id: DOWN-1, site: S, role: monitor, intervalSec: 60 }']) });
    const meter = await world.meter('DOWN-1');
    await publishReadings(meter, 'DOWN-1', wireReading('DOWN-1', 1, Date.now()));
    await eventually(() => storedPairs(direct), (s) => s.points === 1, 10_000, 'the first reading in InfluxDB');
    expect(await world.alerts()).toEqual([]);

    const conditionMs = Date.now();
    proxy.down();
    const { fired, alert } = await expectFired(world, 'influx_down', null);
    expect(alert.message).toMatch(/^InfluxDB is unreachable: /);

    const removedMs = Date.now();
    proxy.up();
    await expectResolved(world, { rule: 'influx_down', meterId: null, conditionMs, removedMs, fired }, 'condition: InfluxDB cut off; removed: reachable again');
    expect(rulesTold(world)).toEqual(['influx_down/-']);
  });
});
