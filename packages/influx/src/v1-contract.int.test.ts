import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createInfluxClient } from './client.ts';
import { dropDatabase } from './database.ts';
import { runInfluxV1Contract } from './v1-contract.ts';
import type { ContractRunner } from './v1-contract.ts';

/*
 * The v1 API contract (v1-contract.ts) against the influxd of test/global-setup.ts (Debian's 1.6.7
 * here, or FLOWPILOT_TEST_INFLUX_URL), on a database of its own; then the two scripts that run the
 * same suite elsewhere, as an operator runs them.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const run = promisify(execFile);

/** vitest as the contract's runner: a skipped check is a skipped test, a note an annotation. */
const vitestRunner: ContractRunner = {
  describe: (name, body) => describe(name, body),
  it: (name, check) => it(name, async (ctx) => check({ skip: (note) => ctx.skip(note), note: (text) => void ctx.annotate(text) })),
  beforeAll: (setup) => beforeAll(setup),
  afterAll: (teardown) => afterAll(teardown),
};

describe('the InfluxDB v1 API contract against the local influxd', () => {
  const client = createInfluxClient({ url: inject('influxUrl'), database: `contract_${randomBytes(6).toString('hex')}`, timeoutMs: 60_000 });
  afterAll(() => dropDatabase(client));
  runInfluxV1Contract(client, vitestRunner);
});

describe('the scripts that run the contract elsewhere', () => {
  it('npm run test:influx -- <url> passes against the local influxd and prints each check', async () => {
    const database = `contract_script_${randomBytes(6).toString('hex')}`;
    try {
      const { stdout } = await run('npx', ['tsx', 'scripts/test-influx.ts', inject('influxUrl'), '--database', database], { cwd: ROOT, timeout: 110_000 });
      expect(stdout).toMatch(/^InfluxDB v1 API contract \(SPEC section 2\) against http:\/\/127\.0\.0\.1:\d+, database contract_script_\w+, no credentials$/m);
      expect(stdout).toMatch(/^ {2}PASS {2}panel 2 "Volume per local day" A$/m);
      expect(stdout).toMatch(/^\d+ checks: \d+ passed, 1 skipped, 0 failed$/m);
      expect(stdout).not.toMatch(/FAIL/);
    } finally {
      await dropDatabase(createInfluxClient({ url: inject('influxUrl'), database }));
    }
  });

  it('npm run test:influx refuses the pilot database and a missing URL with a usage error (exit 2)', async () => {
    for (const args of [[inject('influxUrl'), '--database', 'flowpilot'], []]) {
      const failure = await run('npx', ['tsx', 'scripts/test-influx.ts', ...args], { cwd: ROOT }).catch((error: { code?: number; stderr?: string }) => error);
      expect(failure).toMatchObject({ code: 2, stderr: expect.stringMatching(/^test:influx: /) });
    }
  });

  it('npm run test:influx:containers without a container engine says so in one line, exits 0 and claims no pass', async (ctx) => {
    // Where an engine may answer, the script would start containers: that run is not this test's.
    const sockets = ['/var/run/docker.sock', `${process.env.XDG_RUNTIME_DIR ?? '/nonexistent'}/docker.sock`, `${process.env.HOME}/.testcontainers.properties`];
    if (process.env.DOCKER_HOST || process.env.TESTCONTAINERS_HOST_OVERRIDE || sockets.some((path) => existsSync(path))) {
      ctx.skip('a container engine may be reachable here');
    }
    const { stdout, stderr } = await run('npx', ['tsx', 'scripts/test-influx-containers.ts'], { cwd: ROOT, timeout: 60_000 });
    const lines = `${stdout}${stderr}`.split('\n').filter((line) => line.trim() !== '');
    expect(lines).toEqual([expect.stringMatching(/^test:influx:containers: no container engine is reachable .*: InfluxDB 1\.11, 2\.7 and 3 Core were not tested\.$/)]);
    expect(lines[0]).not.toMatch(/\bpass/i);
  });
});
