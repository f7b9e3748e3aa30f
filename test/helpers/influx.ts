import { randomBytes } from 'node:crypto';
import { inject, onTestFinished } from 'vitest';
import type { InfluxClient } from '@flowpilot/influx';
import { createInfluxClient, quoteIdentifier } from '@flowpilot/influx';

/**
 * A client on a database of its own, on the InfluxDB that test/global-setup.ts started (STYLE
 * habit 9). Call it inside a test, or in a `beforeEach`: the database is dropped when that test
 * finishes (vitest's onTestFinished), so a test author writes only
 *
 *   const influx = await createTestInflux();
 *
 * and never cleans up. The database name is `test_<random hex>`.
 */
export async function createTestInflux(options: { timeoutMs?: number } = {}): Promise<InfluxClient> {
  const database = `test_${randomBytes(6).toString('hex')}`;
  const client = createInfluxClient({ url: inject('influxUrl'), database, timeoutMs: options.timeoutMs ?? 10_000 });
  await client.ensureDatabase();
  onTestFinished(async () => {
    // A server without DROP DATABASE over InfluxQL (3.x) keeps it; the names never collide.
    await client.query(`DROP DATABASE ${quoteIdentifier(database)}`).catch(() => {});
  });
  return client;
}
