import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestInflux } from '../../../test/helpers/influx.ts';
import { runFlowpilot, type CommandOutcome, startService, writePilotFile } from '../../../test/helpers/processes.ts';
import { freePort, waitForPort } from '../../../test/helpers/ports.ts';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowpilot-command-line-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function flowpilot(args: string[], env: Record<string, string> = {}): Promise<CommandOutcome> {
  return runFlowpilot(args, { FLOWPILOT_DATA_DIR: tempDir(), ...env });
}

describe('a mistake on the command line: ERR_USAGE, exit code 2, one line', () => {
  it.each([
    [['frobnicate'], 'unknown command "frobnicate"'],
    [['report', '--from', 'x'], '--from x: expected an ISO 8601 time'],
    [['report', '--from', '2026-11-01T00:00:00Z', '--to', '2026-11-02T00:00:00Z'], '--out is missing; usage: flowpilot report'],
    [['report', '--from', '2026-11-02', '--to', '2026-11-01', '--out', 'r.pdf'], 'is not after --from'],
    [['simulate', '--backfill', 'two weeks'], '--backfill two weeks: expected a number with a unit'],
    [['start', '--no-simulation'], "Unknown option '--no-simulation'; usage: flowpilot start"],
    [['credentials', 'add'], 'needs the login\'s id'],
    [['deadletters', 'list', '--limit', 'all'], '--limit all: expected a whole number'],
    [['tokens', 'add', 'vera'], 'tokens add vera needs --role'],
    [['certs', 'init', '--days', '0'], '--days 0: expected a whole number of days'],
  ])('%j', async (args, mistake) => {
    const result = await flowpilot(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(mistake);
    expect(result.stderr).toContain('flowpilot help');
    expect(result.stderr).not.toContain('A setting is invalid');
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
  });
});

describe('other failures: exit code 1, saying what to check', () => {
  it('keeps a bad setting ERR_CONFIG, naming the variable', async () => {
    const result = await flowpilot(['check'], { FLOWPILOT_HTTP_PORT: 'eighty' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('FLOWPILOT_HTTP_PORT="eighty"');
    expect(result.stderr).toContain('A setting is invalid');
  });

  it('reports an API that does not answer as unreachable, with its address and what to do', async () => {
    const api = `http://127.0.0.1:${await freePort()}`;
    const result = await flowpilot(['report', '--from', '2026-11-01T00:00:00Z', '--to', '2026-11-02T00:00:00Z', '--out', join(tempDir(), 'r.pdf'), '--api', api]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`the FlowPilot API at ${api} is not reachable (ECONNREFUSED): start FlowPilot (npm start), or pass --api`);
    expect(result.stderr).not.toContain('A setting is invalid');
  });

  it('stops what already started when the start-up fails, and names the setting', async () => {
    const dataDir = tempDir();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => taken.close(() => resolve())));
    const metricsPort = (taken.address() as { port: number }).port;
    const broker = startService(['broker', '--no-ingest'], {
      FLOWPILOT_DATA_DIR: dataDir,
      FLOWPILOT_PILOT: writePilotFile(dataDir, ['M1']),
      FLOWPILOT_MQTT_PORT: String(await freePort()),
      FLOWPILOT_METRICS_PORT: String(metricsPort),
    });
    cleanups.push(() => broker.kill('SIGKILL'));
    expect(await broker.exited()).toBe(1);
    expect(broker.output()).toContain(`FLOWPILOT_METRICS_PORT=${metricsPort}`);
  });
});

describe('the standalone ingest', () => {
  it('serves its metrics on FLOWPILOT_INGEST_METRICS_PORT and stops within 5 s of SIGTERM', async () => {
    const influx = await createTestInflux();
    const dataDir = tempDir();
    const ingestMetricsPort = await freePort();
    const ingest = startService(['ingest'], {
      FLOWPILOT_DATA_DIR: dataDir,
      FLOWPILOT_INFLUX_URL: influx.config.url,
      FLOWPILOT_INFLUX_DB: influx.config.database,
      FLOWPILOT_INGEST_METRICS_PORT: String(ingestMetricsPort),
    });
    cleanups.push(() => ingest.kill('SIGKILL'));
    await waitForPort(ingestMetricsPort, 30_000);
    const metrics = await (await fetch(`http://127.0.0.1:${ingestMetricsPort}/metrics`)).text();
    expect(metrics).toContain('flowpilot_');
    const stopping = Date.now();
    expect(await ingest.kill('SIGTERM')).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(5000);
  });
});
