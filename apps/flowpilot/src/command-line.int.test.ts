import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
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
    [['frobnicate'], "unknown command 'frobnicate'", 'flowpilot --help'],
    [['report', '--from', 'x'], '--from x: expected an ISO 8601 time', 'flowpilot report --help'],
    [['report', '--from', '2026-11-01T00:00:00Z', '--to', '2026-11-02T00:00:00Z'], "required option '--out <file>' not specified", 'flowpilot report --help'],
    [['report', '--from', '2026-11-02', '--to', '2026-11-01', '--out', 'r.pdf'], 'is not after --from', 'flowpilot report --help'],
    [['report', '--from', '2026-11-01', '--to', '2026-11-02', '--out', 'r.pdf', '--formt', 'csv'], "unknown option '--formt'; did you mean --format?", 'flowpilot report --help'],
    [['simulate', '--backfill', 'two weeks'], '--backfill two weeks: expected a number with a unit', 'flowpilot simulate --help'],
    [['start', '--no-simulation'], "unknown option '--no-simulation'", 'flowpilot start --help'],
    [['credentials', 'add'], "missing required argument 'id'", 'flowpilot credentials add --help'],
    [['credentials', 'add', 'M1', '--password', 'secret'], "unknown option '--password'", 'flowpilot credentials add --help'],
    [['credentials', 'add', 'M1', '--password-file', '/nonexistent/secret'], '--password-file /nonexistent/secret cannot be read (ENOENT)', 'flowpilot credentials add --help'],
    [['deadletters', 'list', '--limit', 'all'], '--limit all: expected a whole number', 'flowpilot deadletters list --help'],
    [['tokens', 'add', 'vera'], "required option '--role <role>' not specified", 'flowpilot tokens add --help'],
    [['certs', 'init', '--days', '0'], '--days 0: expected a whole number of days', 'flowpilot certs init --help'],
  ])('%j', async (args, mistake, help) => {
    const result = await flowpilot(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(mistake);
    expect(result.stderr).toMatch(/^flowpilot: /);
    expect(result.stderr.trimEnd().endsWith(`(see ${help})`)).toBe(true);
    expect(result.stderr).not.toContain('A setting is invalid');
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
  });
});

describe('help and the version', () => {
  it('prints a command\'s help, not a stack trace, and exits 0 (Issue 14)', async () => {
    const result = await flowpilot(['report', '--help']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain('Usage: flowpilot report [options]');
    for (const option of ['--from', '--to', '--format', '--out', '--lang', '--api', '--token-file']) expect(result.stdout).toContain(option);
    expect(result.stdout).toContain('$ flowpilot report --from');
    const help = await flowpilot(['help', 'credentials', 'add']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: flowpilot credentials add [options] <id>');
    expect(help.stdout).toContain('--password-stdin');
  });

  it('prints the version of the package', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(await flowpilot(['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });
});

describe('flowpilot report --format xlsx', () => {
  it('downloads the API\'s metrics workbook of the period, with the token of --token-file', async () => {
    const workbook = Buffer.from('PK\u0003\u0004 a workbook, as far as this test knows');
    const requests: { url: string | undefined; authorization: string | undefined }[] = [];
    const server = createHttpServer((request, response) => {
      requests.push({ url: request.url, authorization: request.headers.authorization });
      response.writeHead(200, { 'content-type': 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' });
      response.end(workbook);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const api = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const dir = tempDir();
    const tokenFile = join(dir, 'evaluator.token');
    writeFileSync(tokenFile, 'fpt_test-token\n');
    const out = join(dir, 'exports', 'metrics.xlsx');
    const [from, to] = ['2026-11-01T00:00:00Z', '2026-11-02T00:00:00Z'];
    const result = await flowpilot(['report', '--from', from, '--to', to, '--format', 'xlsx', '--out', out, '--api', api, '--token-file', tokenFile]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(`Wrote ${out} (${workbook.byteLength} bytes).\n`);
    expect(readFileSync(out)).toEqual(workbook);
    expect(requests).toEqual([{ url: `/api/v1/reports/metrics.xlsx?from=${Date.parse(from)}&to=${Date.parse(to)}`, authorization: 'Bearer fpt_test-token' }]);
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
