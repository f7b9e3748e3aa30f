import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureInfluxdInstalled, startLocalInflux } from '@flowpilot/influx';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The InfluxDB every integration test shares; each test uses its own database (test/helpers/influx.ts). */
    influxUrl: string;
  }
}

/**
 * Integration project: ONE influxd for the whole run, in a fresh temp dir (STYLE habit 9: each
 * test still owns its database). FLOWPILOT_TEST_INFLUX_URL points the tests at an existing
 * InfluxDB instead (1.x, or 2.x/3.x through their v1 API).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const existing = process.env.FLOWPILOT_TEST_INFLUX_URL;
  if (existing) {
    project.provide('influxUrl', existing.replace(/\/$/, ''));
    return async () => {};
  }
  const log = (msg: string): void => console.log(`[global-setup] ${msg}`);
  await ensureInfluxdInstalled(log);
  const dataDir = mkdtempSync(join(tmpdir(), 'flowpilot-influx-'));
  // If influxd does not start, the error names dataDir/influxd.log, which is kept for reading.
  const influx = await startLocalInflux({ dataDir, log });
  project.provide('influxUrl', influx.url);
  return async () => {
    await influx.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
}
