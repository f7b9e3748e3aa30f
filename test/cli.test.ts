import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openCredentialsStore } from '@flowpilot/broker';
import { startAckedPublishers } from './helpers/acked-publisher.ts';
import { createTestInflux } from './helpers/influx.ts';
import { storedPairs } from './helpers/pipeline.ts';
import { eventually } from './helpers/wait.ts';
import { runFlowpilot, simulatorLogin, startService, writePilotFile, type CommandOutcome } from './helpers/processes.ts';
import { freePort, waitForPort } from './helpers/ports.ts';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowpilot-cli-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const flowpilot = runFlowpilot;
const CLI = fileURLToPath(new URL('../apps/flowpilot/bin/flowpilot.js', import.meta.url));

/** `flowpilot <args>` with `input` piped into its stdin. */
function flowpilotWithInput(args: string[], env: Record<string, string>, input: string): Promise<CommandOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
}

describe('flowpilot check', () => {
  it('accepts the example pilot', async () => {
    const result = await flowpilot(['check', 'examples/pilot.yaml']);
    expect(result).toMatchObject({ code: 0, stdout: expect.stringContaining('is valid: pilot "almaty-2026", 7 meters (3 reference, 3 test, 1 monitor)') });
  });

  it('names all 3 mistakes of a bad pilot file in one error, and exits 1', async () => {
    const file = join(tempDir(), 'pilot.yaml');
    writeFileSync(
      file,
      'pilot: {id: x, name: y, timezone: Mars/Base}\nmeters:\n - {id: A, site: S, role: reference, intervalSec: 0}\n - {id: B, site: S, role: test, reference: C, q3: 10, r: 100, accuracyClass: 2, intervalSec: 60}\n',
    );
    const result = await flowpilot(['check', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('has 3 problems');
    expect(result.stderr).toContain('pilot.timezone: must be an IANA time zone');
    expect(result.stderr).toContain('meters[0].intervalSec: must be greater than 0');
    expect(result.stderr).toContain('meters[1].reference: no meter "C" in this file');
  });
});

describe('flowpilot credentials and deadletters', () => {
  it('prints a generated password once and stores only its hash', async () => {
    const dataDir = tempDir();
    const result = await flowpilot(['credentials', 'add', 'ALM-PS3-DUT1'], { FLOWPILOT_DATA_DIR: dataDir });
    const password = /password, shown only this once:\s+(\S+)/.exec(result.stdout)?.[1];
    expect(password).toHaveLength(24);
    const list = await flowpilot(['credentials', 'list'], { FLOWPILOT_DATA_DIR: dataDir });
    expect(list.stdout.trim()).toBe('ALM-PS3-DUT1\tmeter');
    expect(list.stdout).not.toContain(password!);
    const json = await flowpilot(['credentials', 'list', '--json'], { FLOWPILOT_DATA_DIR: dataDir });
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([{ id: 'ALM-PS3-DUT1', role: 'meter' }]);
  });

  it('takes a password from a file or from stdin, never from the command line, and prints none', async () => {
    const dataDir = tempDir();
    const env = { FLOWPILOT_DATA_DIR: dataDir };
    const file = join(dataDir, 'svc.secret');
    writeFileSync(file, 'from-a-file-0123456789\n', { mode: 0o600 });
    const fromFile = await flowpilot(['credentials', 'add', 'svc', '--role', 'service', '--password-file', file], env);
    expect(fromFile).toMatchObject({ code: 0, stdout: 'Created service login "svc".\n' });
    const fromStdin = await flowpilotWithInput(['credentials', 'add', 'M1', '--password-stdin'], env, 'from-stdin-0123456789\nnot this line\n');
    expect(fromStdin).toMatchObject({ code: 0, stdout: 'Created meter login "M1".\n' });

    const store = openCredentialsStore(join(dataDir, 'credentials.json'));
    expect(await store.verify('svc', 'from-a-file-0123456789')).toEqual({ id: 'svc', role: 'service' });
    expect(await store.verify('M1', 'from-stdin-0123456789')).toEqual({ id: 'M1', role: 'meter' });

    const empty = await flowpilotWithInput(['credentials', 'add', 'M2', '--password-stdin'], env, '');
    expect(empty.code).toBe(2);
    expect(empty.stderr.trim()).toBe('flowpilot: --password-stdin: stdin gave an empty line or nothing (see flowpilot credentials add --help)');
  });

  it('replays the dead letters of a meter that was unknown once it is in the pilot file', async () => {
    const influx = await createTestInflux();
    const dataDir = tempDir();
    const mqttPort = await freePort();
    const env = {
      FLOWPILOT_DATA_DIR: dataDir,
      FLOWPILOT_PILOT: writePilotFile(dataDir, ['KNOWN']),
      FLOWPILOT_MQTT_PORT: String(mqttPort),
      FLOWPILOT_METRICS_PORT: String(await freePort()),
      FLOWPILOT_INFLUX_URL: influx.config.url,
      FLOWPILOT_INFLUX_DB: influx.config.database,
    };
    let broker = startService(['broker'], env);
    cleanups.push(() => broker.kill('SIGKILL'));
    await waitForPort(mqttPort, 30_000);
    const publishers = await startAckedPublishers({ mqttUrl: `mqtt://127.0.0.1:${mqttPort}`, ...simulatorLogin(dataDir), meterIds: ['NEWCOMER'], totalPerMeter: 20, startTsMs: Date.now() - 30 * 60_000 });
    await publishers.run();
    await publishers.close();
    await broker.kill('SIGTERM');

    const listed = await flowpilot(['deadletters', 'list', '--code', 'ERR_METER_UNKNOWN'], env);
    expect(listed.stdout).toContain('Rejected, by reason: {"ERR_METER_UNKNOWN":20}');
    expect(listed.stdout).toContain('meter "NEWCOMER" is not in the pilot file');
    const json = JSON.parse((await flowpilot(['deadletters', 'list', '--limit', '5', '--json'], env)).stdout) as { rejectedByCode: unknown; deadLetters: { topic: string; code: string }[] };
    expect(json.rejectedByCode).toEqual({ ERR_METER_UNKNOWN: 20 });
    expect(json.deadLetters).toHaveLength(5);
    expect(json.deadLetters[0]).toMatchObject({ topic: 'meters/NEWCOMER/readings', code: 'ERR_METER_UNKNOWN' });

    writePilotFile(dataDir, ['KNOWN', 'NEWCOMER']);
    const replayed = await flowpilot(['deadletters', 'replay'], env);
    expect(replayed.stdout).toContain('Replayed 20 dead letters');
    broker = startService(['broker'], env);
    const stored = await eventually(() => storedPairs(influx), (s) => s.points >= 20, 30_000, (s) => `${s.points} of 20`);
    expect([...stored.pairs].sort()).toEqual(Array.from({ length: 20 }, (_, seq) => `NEWCOMER#${seq}`).sort());
    // Replayed letters are marked: a second replay has nothing to do.
    expect((await flowpilot(['deadletters', 'replay'], env)).stdout).toContain('Replayed 0 dead letters');
  });
});

describe('flowpilot tokens and the API\'s exposure (SPEC section 8)', () => {
  it('refuses to start the API on a network address without a token, in one sentence, and starts once a token exists', async () => {
    const dataDir = tempDir();
    const env = { FLOWPILOT_DATA_DIR: dataDir, FLOWPILOT_HTTP_HOST: '0.0.0.0', FLOWPILOT_INFLUX_URL: 'http://127.0.0.1:9' };
    const refused = await flowpilot(['api'], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/FLOWPILOT_HTTP_HOST=0\.0\.0\.0 lets other machines reach the API, and no API token exists: add one with `flowpilot tokens add <name> --role admin`/);

    const added = await flowpilot(['tokens', 'add', 'evaluator-1', '--role', 'evaluator'], env);
    expect(added.code).toBe(0);
    const token = /fpt_[A-Za-z0-9_-]+/.exec(added.stdout)?.[0];
    expect(token).toBeDefined();
    const listed = await flowpilot(['tokens', 'list'], env);
    expect(listed.stdout).toContain('evaluator-1');
    expect(listed.stdout).not.toContain(token!);

    // With a token the check passes; `api` then stops at the next step (no service login in this data dir).
    const next = await flowpilot(['api'], env);
    expect(next.stderr).not.toContain('no API token exists');
    expect(next.stderr).toContain('no MQTT login for the flowpilot-api service');
  });
});
