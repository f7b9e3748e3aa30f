/**
 * Times GET /api/v1/metrics over 30 days of one-minute data for 20 meters (5 reference/test
 * pairs and 10 monitors) on a local influxd of its own, in a temp dir:
 *
 *   npx tsx services/api/scripts/measure-metrics.ts [--meters 20] [--days 30] [--calls 10] [--keep]
 *
 * Seeds 864,000 readings with the ingest's line protocol in 5,000-line batches, then calls the
 * route 10 times with app.inject() and prints the median and p95. `--keep` leaves influxd
 * running (its URL is printed) for experiments; Ctrl-C stops it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createInfluxClient, readingLine, startLocalInflux } from '@flowpilot/influx';
import type { AlarmName, Reading } from '@flowpilot/schema';
import { createApi } from '../src/app.ts';
import { createMemoryLiveFeed } from '../src/live-feed.ts';
import { measurePilot } from './measure-pilot.ts';

const MIN_MS = 60_000;
const DAY_MS = 86_400_000;

const { values } = parseArgs({
  options: {
    meters: { type: 'string', default: '20' },
    days: { type: 'string', default: '30' },
    calls: { type: 'string', default: '10' },
    keep: { type: 'boolean', default: false },
  },
});
const meterCount = Number(values.meters);
const days = Number(values.days);
const calls = Number(values.calls);

/** Diurnal flow between ~1 and ~120 m³/h, a 0.2 % dropout, a leak alarm now and then. */
function* meterReadings(meterId: string, site: string, index: number, fromMs: number, n: number, errorOf: ((q: number) => number) | null): Generator<string> {
  let total = 1000 + index * 100;
  for (let i = 0; i < n; i++) {
    const tsMs = fromMs + i * MIN_MS;
    const hour = ((tsMs / 3_600_000) % 24) + index * 0.1;
    const q = 4 + 110 * Math.sin((Math.PI * hour) / 24) ** 2 + 3 * Math.sin(i / 7 + index);
    const flow = errorOf ? q * (1 + errorOf(q) / 100) : q;
    total += flow / 60;
    if ((i * 7919 + index * 104_729) % 500 === 0) continue; // dropped
    const alarms: AlarmName[] = i % 997 === index ? ['leak'] : [];
    const reading: Reading = { meterId, seq: i, tsMs, flowM3h: Math.round(flow * 1e4) / 1e4, totalM3: Math.round(total * 1e6) / 1e6, temperatureC: 12, alarms };
    yield readingLine(reading, site, tsMs + 200 + ((i * 31) % 900));
  }
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'flowpilot-measure-'));
  const local = await startLocalInflux({ dataDir });
  const influx = createInfluxClient({ url: local.url, database: 'flowpilot', timeoutMs: 60_000 });
  await influx.ensureDatabase();
  const pilot = measurePilot(meterCount);
  const toMs = Math.floor(Date.now() / DAY_MS) * DAY_MS;
  const fromMs = toMs - days * DAY_MS;
  const n = days * 1440;

  const seedStart = Date.now();
  let batch: string[] = [];
  let written = 0;
  for (const [index, meter] of pilot.meters.entries()) {
    const errorOf = meter.role === 'test' ? (q: number) => (q < 1.6 * (100 / 160) ? 3.5 : 0.8) : null;
    for (const line of meterReadings(meter.id, meter.site, index, fromMs, n, errorOf)) {
      batch.push(line);
      if (batch.length === 5000) {
        await influx.write(batch);
        written += batch.length;
        batch = [];
      }
    }
  }
  await influx.write(batch);
  written += batch.length;
  console.log(`seeded ${written} readings of ${pilot.meters.length} meters over ${days} days in ${((Date.now() - seedStart) / 1000).toFixed(1)} s`);

  const app = await createApi({ pilot, influx, liveFeed: createMemoryLiveFeed(), clock: () => toMs });
  const url = `/api/v1/metrics?from=${fromMs}&to=${toMs}`;
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const start = performance.now();
    const response = await app.inject(url);
    const ms = performance.now() - start;
    if (response.statusCode !== 200) throw new Error(`GET ${url} answered ${response.statusCode}: ${response.body.slice(0, 500)}`);
    times.push(ms);
    console.log(`call ${i + 1}: ${ms.toFixed(0)} ms (${response.body.length} bytes)`);
  }
  times.sort((a, b) => a - b);
  if (times.length === 0) times.push(NaN);
  const rank = (p: number) => times[Math.min(times.length, Math.max(1, Math.ceil((p / 100) * times.length))) - 1] as number;
  console.log(`GET /api/v1/metrics, ${pilot.meters.length} meters × ${days} days of 1-minute data, ${calls} calls: median ${rank(50).toFixed(0)} ms, p95 ${rank(95).toFixed(0)} ms`);
  await app.close();

  if (values.keep) {
    console.log(`influxd stays up at ${local.url} (database flowpilot, window ${fromMs}..${toMs}); Ctrl-C stops it`);
    process.once('SIGINT', () => void local.stop().then(() => rmSync(dataDir, { recursive: true, force: true })));
    return;
  }
  await local.stop();
  rmSync(dataDir, { recursive: true, force: true });
}

await main();
