import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { alarmMask, ARRIVAL } from '@flowpilot/schema';
import type { Arrival, Reading } from '@flowpilot/schema';
import type { InfluxClient, InfluxConfig } from './client.ts';
import { createInfluxClient } from './client.ts';
import { InfluxError } from './errors.ts';
import { quoteIdentifier as q, quoteString } from './influxql.ts';
import { readingLine, statusLine } from './line-protocol.ts';
import { createReadingsRepository } from './readings-repository.ts';
import type { StoredReading } from './readings-repository.ts';
import { METER_TAG, READING_MEASUREMENT, STATUS_MEASUREMENT } from './storage.ts';
import { writeIsolating } from './write-isolating.ts';

/*
 * The contract of the InfluxDB v1 HTTP API as FlowPilot uses it (SPEC section 2; STYLE habit 8: one
 * suite, run against every server): /ping, CREATE DATABASE, /write with ms precision, idempotent
 * points, the field types, escaped tags, every statement shape of readings-repository.ts (run
 * through the repository itself, so a new query is covered the day it is written), chunked
 * answers, errors and the Authorization header. It runs in vitest against the local influxd
 * (v1-contract.int.test.ts), against a site's server with `npm run test:influx` and against
 * InfluxDB 1.11, 2.7 and 3 Core containers with `npm run test:influx:containers`.
 *
 * Its points go to measurement `reading` (the repository's queries name it) under meter ids of
 * its own, `fpcheck-<run>-…`, with timestamps of the last two days (inside a 2.x bucket's retention
 * and latest()'s lookback). So it may share a scratch database with earlier runs, never with a
 * pilot: every expectation is about its own meters. Assertions are node:assert, so the suite
 * needs no test framework.
 */

/** What a check can do besides pass or throw. */
export interface ContractCheckContext {
  /** Ends the check as skipped, saying why (the server lacks something FlowPilot can do without). */
  skip(note: string): never;
  /** A fact shown beside the check's result (the server's version, the credentials' form). */
  note(text: string): void;
}

/** The four calls of vitest the suite needs; createConsoleRunner is the tiny one for scripts. */
export interface ContractRunner {
  describe(name: string, body: () => void): void;
  it(name: string, check: (context: ContractCheckContext) => Promise<void>): void;
  beforeAll(setup: () => Promise<void>): void;
  afterAll(teardown: () => Promise<void>): void;
}

/** The suite's data, decided before it runs, for queries that are written against it (the Grafana dashboard's). */
export interface ContractWorld {
  runId: string;
  /** A UTC midnight two days before now: the data set's first day. */
  day0Ms: number;
  /** The meter with 10-minute readings over two whole days (288 readings). */
  meterId: string;
  /** Every meter id of the data set written before the checks. */
  meterIds: readonly string[];
  /** [day0, day0 + 2 days): the data set's span. */
  fromMs: number;
  toMs: number;
}

export interface NamedQuery {
  name: string;
  influxql: string;
}

export interface InfluxV1ContractOptions {
  /** The clock that places the data set; default Date.now. */
  nowMs?: () => number;
  /** Names this run's meters; default 6 random hex digits. */
  runId?: string;
  /** Queries written by someone else (the Grafana dashboard's) that must each answer something over the data set. */
  extraQueries?: { title: string; build: (world: ContractWorld) => readonly NamedQuery[] };
  /** Drop the run's series afterwards where the server allows it (DROP SERIES, 1.x); default true. */
  cleanUp?: boolean;
}

const MIN = 60_000;
const DAY = 86_400_000;
/** Rows per chunk of a read (client.ts QUERY_CHUNK_ROWS is 10,000): the big meter spans three chunks. */
const BIG_ROWS = 25_000;
const WRITE_BATCH = 5000;

export function contractWorld(options: Pick<InfluxV1ContractOptions, 'nowMs' | 'runId'> = {}): ContractWorld {
  const runId = options.runId ?? randomBytes(3).toString('hex');
  const day0Ms = Math.floor((options.nowMs ?? Date.now)() / DAY) * DAY - 2 * DAY;
  const prefix = `fpcheck-${runId}`;
  return { runId, day0Ms, meterId: `${prefix}-a`, meterIds: [`${prefix}-a`, `${prefix}-b`, `${prefix}-big`], fromMs: day0Ms, toMs: day0Ms + 2 * DAY };
}

interface Written {
  reading: Reading;
  site: string;
  receivedAtMs: number;
  arrival: Arrival;
}

/** The data set: meter a every 10 minutes over two days, b three readings, big 25,000 one a second. */
function dataSet(world: ContractWorld): Written[] {
  const [a, b, big] = world.meterIds as [string, string, string];
  const out: Written[] = [];
  for (let k = 0; k < 288; k++) {
    const tsMs = world.day0Ms + k * 10 * MIN;
    out.push({
      reading: {
        meterId: a,
        seq: 1000 + k,
        tsMs,
        flowM3h: 10.25 + (k % 7),
        totalM3: 100 + k * 0.5,
        ...(k % 2 === 0 ? { temperatureC: 11.5 } : {}),
        alarms: k % 100 === 0 ? ['leak'] : [],
      },
      site: 'S 1',
      receivedAtMs: tsMs + 500 + k,
      arrival: k % 50 === 0 ? ARRIVAL.backfill : ARRIVAL.alone,
    });
  }
  for (let k = 0; k < 3; k++) {
    const tsMs = world.day0Ms + DAY + k * MIN;
    out.push({ reading: { meterId: b, seq: 5 + k, tsMs, flowM3h: 1.5, totalM3: 7 + k, alarms: [] }, site: 'S 2', receivedAtMs: tsMs + 250, arrival: ARRIVAL.alone });
  }
  for (let i = 0; i < BIG_ROWS; i++) {
    const tsMs = world.day0Ms + i * 1000;
    out.push({ reading: { meterId: big, seq: i, tsMs, flowM3h: i % 100, totalM3: i / 1000, alarms: [] }, site: 'S 3', receivedAtMs: tsMs + 100, arrival: ARRIVAL.alone });
  }
  return out;
}

const line = (w: Written): string => readingLine(w.reading, w.site, w.receivedAtMs, w.arrival);

/** What the repository reads back for a written reading (StoredReading: the reading and its receive time). */
const stored = (w: Written): StoredReading => ({ ...w.reading, receivedAtMs: w.receivedAtMs });

async function writeAll(client: InfluxClient, lines: readonly string[]): Promise<void> {
  for (let i = 0; i < lines.length; i += WRITE_BATCH) await client.write(lines.slice(i, i + WRITE_BATCH));
}

function credentialsForm(config: Readonly<InfluxConfig>): string {
  if (config.token !== undefined) return 'Authorization: Token';
  if (config.username !== undefined || config.password !== undefined) return 'Authorization: Basic (username and password)';
  return 'no credentials';
}

/** The same server with credentials that cannot be right. */
function wrongCredentials(config: Readonly<InfluxConfig>): InfluxConfig {
  const wrong = `fpcheck-wrong-${randomBytes(8).toString('hex')}`;
  if (config.token !== undefined) return { ...config, token: wrong };
  if (config.username !== undefined || config.password !== undefined) return { ...config, password: wrong };
  return { ...config, token: wrong };
}

/**
 * Registers the suite with `runner` (vitest's describe/it/beforeAll/afterAll, or
 * createConsoleRunner's). `client` names the server, the database (a scratch one: see the head of
 * this file) and the credentials.
 */
export function runInfluxV1Contract(client: InfluxClient, runner: ContractRunner, options: InfluxV1ContractOptions = {}): ContractWorld {
  const { describe, it, beforeAll, afterAll } = runner;
  const world = contractWorld(options);
  const data = dataSet(world);
  const [a, b, big] = world.meterIds as [string, string, string];
  const prefix = `fpcheck-${world.runId}`;
  const ofMeter = (meterId: string) => data.filter((w) => w.reading.meterId === meterId);
  const readings = createReadingsRepository(client);
  const D0 = world.day0Ms;

  beforeAll(async () => {
    await client.ensureDatabase();
    await writeAll(client, data.map(line));
    await client.write([statusLine({ meterId: a, online: true, tsMs: D0 })]);
  });

  afterAll(async () => {
    if (options.cleanUp === false) return;
    // InfluxQL's DROP SERIES is 1.x's; 2.x's and 3.x's v1 APIs refuse it, and the points stay in the scratch database.
    for (const measurement of [READING_MEASUREMENT, STATUS_MEASUREMENT]) {
      await client.query(`DROP SERIES FROM ${q(measurement)} WHERE ${q(METER_TAG)} =~ /^${prefix}-/`).catch(() => undefined);
    }
  });

  describe('server', () => {
    it('/ping answers with the server version (X-Influxdb-Version header, or the JSON body of 3.x)', async (ctx) => {
      const { version } = await client.ping();
      assert.notEqual(version, 'unknown', '/ping answered without a version: is this an InfluxDB?');
      ctx.note(`version ${version}`);
    });

    it('CREATE DATABASE is accepted or tolerated (3.x creates a database on its first write)', async () => {
      await client.ensureDatabase();
      await client.ensureDatabase();
    });
  });

  describe('writes (/write, precision=ms)', () => {
    it('a write is confirmed with 204 and keeps the millisecond', async () => {
      const meterId = `${prefix}-ms`;
      const tsMs = D0 + 123;
      await client.write([readingLine({ meterId, seq: 1, tsMs, flowM3h: 1, totalM3: 1, alarms: [] }, 'S', tsMs + 7)]);
      const back = await readings.readings(meterId, { fromMs: D0, toMs: D0 + 1000 });
      assert.deepEqual(back.map((r) => r.tsMs), [tsMs]);
    });

    it('the same meter and ts written twice is one point, the later write winning (SPEC section 2)', async () => {
      const meterId = `${prefix}-dup`;
      const reading: Reading = { meterId, seq: 9, tsMs: D0 + 5 * MIN, flowM3h: 2, totalM3: 3, alarms: [] };
      await client.write([readingLine(reading, 'S', reading.tsMs + 100, ARRIVAL.alone)]);
      const again = readingLine(reading, 'S', reading.tsMs + 9000, ARRIVAL.backfill);
      await client.write([again, again]);
      const [series] = await client.query(`SELECT count("seq") FROM ${q(READING_MEASUREMENT)} WHERE ${q(METER_TAG)} = ${quoteString(meterId)}`);
      assert.equal(series?.values[0]?.[1], 1, 'a redelivered reading must not be stored twice');
      const columns = await readings.columns({ meterId, fromMs: D0, toMs: D0 + DAY });
      assert.deepEqual([Array.from(columns.receivedAtMs), Array.from(columns.arrival)], [[reading.tsMs + 9000], [ARRIVAL.backfill]]);
    });

    it('fields keep their types: floats bare, integers with i, booleans', async () => {
      const types = async (measurement: string) => {
        const [series] = await client.query(`SHOW FIELD KEYS FROM ${q(measurement)}`);
        return Object.fromEntries((series?.values ?? []).map(([key, type]) => [key, type]));
      };
      const reading = await types(READING_MEASUREMENT);
      for (const field of ['flow', 'total', 'temperature']) assert.equal(reading[field], 'float', `field ${field}`);
      for (const field of ['seq', 'alarms', 'received_at', 'latency_ms', 'arrival']) assert.equal(reading[field], 'integer', `field ${field}`);
      assert.equal((await types(STATUS_MEASUREMENT)).online, 'boolean', 'field online of status');
      const [status] = await client.query(`SELECT "online" FROM ${q(STATUS_MEASUREMENT)} WHERE ${q(METER_TAG)} = ${quoteString(a)}`);
      assert.deepEqual(status?.values, [[D0, true]]);
      const [first] = await readings.readings(a, { fromMs: D0, toMs: D0 + 1 });
      // alarms is an integer bit mask (SPEC section 2), read back as the names.
      assert.deepEqual(first?.alarms, ['leak']);
      assert.equal(alarmMask(first?.alarms ?? []), 4);
    });

    it('a line whose field type conflicts is refused as bad-lines; writeIsolating keeps the good ones', async () => {
      const meterId = `${prefix}-conflict`;
      // The same instant as a stored point of the data set, so 1.x checks it against the same shard.
      const tsMs = D0 + 10 * MIN;
      const good = readingLine({ meterId, seq: 1, tsMs, flowM3h: 1.5, totalM3: 1, alarms: [] }, 'S', tsMs + 1);
      const conflicting = `${READING_MEASUREMENT},${METER_TAG}=${meterId}-x,site=S flow=1i ${tsMs}`;
      await assert.rejects(client.write([conflicting]), (error: unknown) => error instanceof InfluxError && error.kind === 'bad-lines');
      const result = await writeIsolating(client, [good, conflicting]);
      assert.equal(result.written, 1);
      assert.deepEqual(result.rejected.map((r) => r.line), [conflicting]);
      assert.equal((await readings.readings(meterId, { fromMs: tsMs, toMs: tsMs + 1 })).length, 1);
    });

    it('tag values with spaces, commas, equals signs and quotes are stored as they were and found with quoteString', async () => {
      const sites = ['Pump station 3, outlet', 'zone=north', "O'Brien's well", 'say "hi"'];
      const meterOf = (i: number) => `${prefix}-tag${i}`;
      await client.write(sites.map((site, i) => readingLine({ meterId: meterOf(i), seq: i, tsMs: D0 + i * MIN, flowM3h: 1, totalM3: 1, alarms: [] }, site, D0)));
      for (const [i, site] of sites.entries()) {
        const [series] = await client.query(
          `SELECT "seq", "site" FROM ${q(READING_MEASUREMENT)} WHERE ${q(METER_TAG)} = ${quoteString(meterOf(i))} AND "site" = ${quoteString(site)}`,
        );
        assert.deepEqual(series?.values, [[D0 + i * MIN, i, site]], `site ${JSON.stringify(site)}`);
      }
    });
  });

  describe('the queries of readings-repository.ts', () => {
    const hour = { fromMs: D0, toMs: D0 + 60 * MIN };

    it('readings(): raw rows oldest first (ORDER BY time ASC, LIMIT)', async () => {
      assert.deepEqual(await readings.readings(a, hour), ofMeter(a).slice(0, 6).map(stored));
      assert.deepEqual((await readings.readings(a, hour, 2)).map((r) => r.seq), [1000, 1001]);
    });

    it('buckets(): mean, min, max, last and count per GROUP BY time() bucket, fill(none)', async () => {
      const buckets = await readings.buckets(a, { fromMs: D0, toMs: D0 + 2 * DAY + 6 * 60 * MIN }, 30 * MIN);
      assert.equal(buckets.length, 96, 'the empty buckets after the data must not be answered (fill(none))');
      const firstSix = ofMeter(a).slice(0, 6).map((w) => w.reading);
      const bucketOf = (rs: Reading[], tsMs: number) => ({
        tsMs,
        flowMeanM3h: rs.reduce((s, r) => s + r.flowM3h, 0) / rs.length,
        flowMinM3h: Math.min(...rs.map((r) => r.flowM3h)),
        flowMaxM3h: Math.max(...rs.map((r) => r.flowM3h)),
        totalLastM3: rs[rs.length - 1]?.totalM3 ?? null,
        count: rs.length,
      });
      assert.deepEqual(buckets.slice(0, 2), [bucketOf(firstSix.slice(0, 3), D0), bucketOf(firstSix.slice(3), D0 + 30 * MIN)]);
    });

    it('latest() and latestOfEvery(): ORDER BY time DESC LIMIT 1 within now() - Nd, per meter', async () => {
      assert.deepEqual(await readings.latest(a, 7), stored(ofMeter(a)[287] as Written));
      const latest = await readings.latestOfEvery(7);
      assert.deepEqual([a, b, big].map((m) => latest.get(m)?.seq), [1287, 7, BIG_ROWS - 1]);
    });

    it('columns(): [from, to) or [from, to], typed columns with arrival and temperature', async () => {
      const query = { meterId: a, fromMs: D0, toMs: D0 + 30 * MIN, temperature: true };
      const open = await readings.columns(query);
      const closed = await readings.columns({ ...query, toInclusive: true });
      assert.deepEqual([open.tsMs.length, closed.tsMs.length], [3, 4]);
      assert.deepEqual(Array.from(closed.seq), [1000, 1001, 1002, 1003]);
      assert.deepEqual(Array.from(closed.arrival), [ARRIVAL.backfill, ARRIVAL.alone, ARRIVAL.alone, ARRIVAL.alone]);
      assert.deepEqual(Array.from(closed.receivedAtMs), ofMeter(a).slice(0, 4).map((w) => w.receivedAtMs));
      assert.equal(closed.temperatureC[0], 11.5);
      assert.ok(Number.isNaN(closed.temperatureC[1]), 'a reading without temperature reads as NaN');
      assert.equal(closed.alarmsMask[0], alarmMask(['leak']));
      const totals = await readings.columns({ meterId: a, fromMs: D0, toMs: D0 + 30 * MIN, totalsOnly: true });
      assert.deepEqual(Array.from(totals.totalM3), [100, 100.5, 101]);
    });

    it('dayStamps(): count and max(received_at) per meter and UTC day (GROUP BY meter, time(1d))', async () => {
      const stamps = (await readings.dayStamps({ fromMs: D0, toMs: D0 + 2 * DAY - 1 })).filter((s) => s.meterId === a);
      const dayOf = (day: number) => ofMeter(a).filter((w) => w.reading.tsMs >= D0 + day * DAY && w.reading.tsMs < D0 + (day + 1) * DAY);
      assert.deepEqual(
        stamps,
        [0, 1].map((day) => ({ meterId: a, dayMs: D0 + day * DAY, count: 144, maxReceivedAtMs: Math.max(...dayOf(day).map((w) => w.receivedAtMs)) })),
      );
    });

    it('count(), seqs() and maxSeqs(): counts and seq per meter (OR of meters, GROUP BY meter)', async () => {
      assert.deepEqual(await readings.seqs([a, b, `${prefix}-none`]), new Map([[a, ofMeter(a).map((w) => w.reading.seq)], [b, [5, 6, 7]]]));
      assert.deepEqual(await readings.maxSeqs([a, b], D0 + DAY), new Map([[a, 1287], [b, 7]]));
      const before = await readings.count();
      assert.ok(before >= data.length, `count() is ${before}, fewer than the ${data.length} readings written`);
      await client.write([readingLine({ meterId: `${prefix}-count`, seq: 1, tsMs: D0, flowM3h: 1, totalM3: 1, alarms: [] }, 'S', D0)]);
      assert.equal(await readings.count(), before + 1);
    });

    it(`an answer of ${BIG_ROWS.toLocaleString('en')} rows comes in chunks of 10,000 and is read whole`, async () => {
      const columns = await readings.columns({ meterId: big, fromMs: D0, toMs: D0 + DAY });
      assert.equal(columns.tsMs.length, BIG_ROWS);
      assert.equal(columns.seq[BIG_ROWS - 1], BIG_ROWS - 1);
      for (let i = 1; i < BIG_ROWS; i++) if (!((columns.tsMs[i] as number) > (columns.tsMs[i - 1] as number))) assert.fail(`row ${i} is out of order or repeated`);
    });
  });

  describe('errors and credentials', () => {
    it('an InfluxQL syntax error is refused as kind query and not retried', async () => {
      await assert.rejects(client.query('SELEC nothing'), (error: unknown) => error instanceof InfluxError && error.kind === 'query' && !error.canRetry());
    });

    it('the configured credentials are accepted on /write and /query', async (ctx) => {
      ctx.note(credentialsForm(client.config));
      await client.write([readingLine({ meterId: `${prefix}-auth`, seq: 1, tsMs: D0, flowM3h: 1, totalM3: 1, alarms: [] }, 'S', D0)]);
      assert.equal((await readings.readings(`${prefix}-auth`, { fromMs: D0, toMs: D0 + 1 })).length, 1);
    });

    it('wrong credentials are refused as kind auth (401 or 403), never retried', async (ctx) => {
      const wrong = createInfluxClient(wrongCredentials(client.config));
      let answered = false;
      try {
        await wrong.query(`SELECT count("seq") FROM ${q(READING_MEASUREMENT)} WHERE ${q(METER_TAG)} = ${quoteString(a)}`);
        answered = true;
      } catch (error) {
        assert.ok(error instanceof InfluxError && error.kind === 'auth' && !error.canRetry(), `expected kind auth, got ${(error as Error).message}`);
      }
      if (answered) ctx.skip('the server answered a query with wrong credentials: it does not enforce authentication (fine on loopback, not on a network)');
    });
  });

  const extra = options.extraQueries;
  if (extra) {
    describe(extra.title, () => {
      for (const query of extra.build(world)) {
        it(query.name, async () => {
          const series = await client.query(query.influxql);
          const values = series.flatMap((s) => s.values.flatMap((row) => row.slice(1)));
          assert.ok(values.some((v) => v !== null), `no value in the answer to ${query.influxql}`);
        });
      }
    });
  }

  return world;
}

/** One check's outcome in a console run. */
export interface ContractResult {
  path: string[];
  name: string;
  outcome: 'pass' | 'fail' | 'skip';
  detail?: string;
}

export interface ConsoleRun {
  runner: ContractRunner;
  /** Runs what was registered, printing a line per check; resolves with every result. */
  run(): Promise<ContractResult[]>;
}

class Skipped extends Error {}

const firstLines = (text: string, n = 4): string => text.split('\n').filter((l) => l.trim() !== '').slice(0, n).join(' / ');

/** A runner for scripts: the checks run one after the other, each printed as PASS, SKIP or FAIL with why. */
export function createConsoleRunner(print: (line: string) => void = console.log): ConsoleRun {
  const checks: { path: string[]; name: string; check: (context: ContractCheckContext) => Promise<void> }[] = [];
  const setups: (() => Promise<void>)[] = [];
  const teardowns: (() => Promise<void>)[] = [];
  const path: string[] = [];
  const runner: ContractRunner = {
    describe(name, body) {
      path.push(name);
      try {
        body();
      } finally {
        path.pop();
      }
    },
    it(name, check) {
      checks.push({ path: [...path], name, check });
    },
    beforeAll(setup) {
      setups.push(setup);
    },
    afterAll(teardown) {
      teardowns.push(teardown);
    },
  };

  async function run(): Promise<ContractResult[]> {
    const results: ContractResult[] = [];
    let setupError: string | undefined;
    for (const setup of setups) {
      try {
        await setup();
      } catch (error) {
        setupError = firstLines((error as Error).message ?? String(error));
        print(`FAIL  writing the data set: ${setupError}`);
        break;
      }
    }
    let group = '';
    for (const { path: at, name, check } of checks) {
      const heading = at.join(' / ');
      if (heading !== group) {
        print(heading);
        group = heading;
      }
      const notes: string[] = [];
      const context: ContractCheckContext = {
        skip(note) {
          throw new Skipped(note);
        },
        note(text) {
          notes.push(text);
        },
      };
      let result: ContractResult;
      if (setupError !== undefined) {
        result = { path: at, name, outcome: 'fail', detail: 'not run: the data set could not be written' };
      } else {
        try {
          await check(context);
          result = { path: at, name, outcome: 'pass', ...(notes.length > 0 ? { detail: notes.join('; ') } : {}) };
        } catch (error) {
          result =
            error instanceof Skipped
              ? { path: at, name, outcome: 'skip', detail: error.message }
              : { path: at, name, outcome: 'fail', detail: firstLines((error as Error).message ?? String(error)) };
        }
      }
      results.push(result);
      print(`  ${result.outcome.toUpperCase().padEnd(4)}  ${name}${result.detail ? ` (${result.detail})` : ''}`);
    }
    for (const teardown of teardowns) await teardown().catch(() => undefined);
    const count = (outcome: ContractResult['outcome']) => results.filter((r) => r.outcome === outcome).length;
    print(`${results.length} checks: ${count('pass')} passed, ${count('skip')} skipped, ${count('fail')} failed`);
    return results;
  }

  return { runner, run };
}
