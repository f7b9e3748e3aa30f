import type { InfluxClient } from './client.ts';
import { quoteIdentifier } from './influxql.ts';

/** Deletes a database and everything in it (the bench cleans up after itself); no error when it is already gone. */
export async function dropDatabase(influx: InfluxClient, database = influx.config.database): Promise<void> {
  await influx.query(`DROP DATABASE ${quoteIdentifier(database)}`).catch(() => undefined);
}
