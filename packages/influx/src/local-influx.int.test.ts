import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createInfluxClient } from './client.ts';
import { InfluxError } from './errors.ts';
import type { LocalInflux } from './local-influx.ts';
import { ensureInfluxdInstalled, freePorts, startLocalInflux } from './local-influx.ts';

// A second influxd beside the one of test/global-setup.ts, in a temp dir of its own (STYLE habit 9).
describe('startLocalInflux', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'flowpilot-local-influx-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  async function start(dataDir: string, port?: number): Promise<LocalInflux> {
    const influx = await startLocalInflux(port === undefined ? { dataDir } : { dataDir, port });
    cleanups.push(() => influx.stop());
    return influx;
  }

  it('finds influxd', async () => {
    expect(await ensureInfluxdInstalled()).toMatch(/influxd$/);
  });

  it('starts, answers /ping, stops, and restarts on the same data dir with the data still there', async () => {
    const dataDir = tempDir();
    const first = await start(dataDir);
    expect(first.url).toBe(`http://127.0.0.1:${first.port}`);
    const client = createInfluxClient({ url: first.url, database: 'kept' });
    expect((await client.ping()).version).toMatch(/^1\./);
    await client.ensureDatabase();
    await client.write(['reading,meter=a,site=s flow=1.5,seq=1i 1000', 'reading,meter=a,site=s flow=2.5,seq=2i 2000']);
    expect(existsSync(join(dataDir, 'influxd.conf'))).toBe(true);
    expect(existsSync(join(dataDir, 'influxd.pid'))).toBe(true);
    // Owner only (SPEC section 8): the folders 0700, the config 0600.
    for (const dir of [dataDir, join(dataDir, 'meta'), join(dataDir, 'data'), join(dataDir, 'wal')]) expect(statSync(dir).mode & 0o777, dir).toBe(0o700);
    expect(statSync(join(dataDir, 'influxd.conf')).mode & 0o777).toBe(0o600);

    await first.stop();
    await first.stop(); // idempotent
    expect(existsSync(join(dataDir, 'influxd.pid'))).toBe(false);
    await expect(client.ping()).rejects.toMatchObject({ kind: 'unavailable' });

    const second = await start(dataDir);
    const again = createInfluxClient({ url: second.url, database: 'kept' });
    const [series] = await again.query('SELECT "flow", "seq" FROM "reading"');
    expect(series?.values).toEqual([
      [1000, 1.5, 1],
      [2000, 2.5, 2],
    ]);
    // HTTP log is off, so the log holds influxd's own lines only, and no query or write logging.
    expect(readFileSync(join(dataDir, 'influxd.log'), 'utf8')).not.toContain('/write?');
  });

  it('recovers after influxd was SIGKILLed, and stops an influxd an earlier run left on the data dir', async () => {
    const dataDir = tempDir();
    const first = await start(dataDir);
    const client = createInfluxClient({ url: first.url, database: 'kept' });
    await client.ensureDatabase();
    await client.write(['reading,meter=a,site=s flow=1.5 1000']);

    // Unclean end: only the WAL has the point; the restart replays it.
    const pid = Number(readFileSync(join(dataDir, 'influxd.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
    await first.stop();

    // An orphan: an influxd on our config that nobody will stop (its FlowPilot was SIGKILLed).
    const orphan = spawn(await ensureInfluxdInstalled(), ['-config', join(dataDir, 'influxd.conf')], { stdio: 'ignore', detached: true });
    const orphanExited = new Promise((done) => orphan.once('exit', done));
    cleanups.push(async () => {
      if (orphan.exitCode === null && orphan.signalCode === null) orphan.kill('SIGKILL');
    });
    writeFileSync(join(dataDir, 'influxd.pid'), `${orphan.pid}\n`);
    const orphanUrl = first.url;
    await expect.poll(() => createInfluxClient({ url: orphanUrl, database: 'kept' }).ping().then(() => true, () => false), { timeout: 10_000 }).toBe(true);

    const logged: string[] = [];
    const second = await startLocalInflux({ dataDir, log: (msg) => logged.push(msg) });
    cleanups.push(() => second.stop());
    await orphanExited;
    expect(logged.some((msg) => msg.includes(`stopping influxd (pid ${orphan.pid})`))).toBe(true);
    const [series] = await createInfluxClient({ url: second.url, database: 'kept' }).query('SELECT "flow" FROM "reading"');
    expect(series?.values).toEqual([[1000, 1.5]]);
  });

  it('uses the port it is given', async () => {
    const [port] = await freePorts(1);
    const influx = await start(tempDir(), port);
    expect(influx.port).toBe(port);
    expect((await createInfluxClient({ url: influx.url, database: 'x' }).ping()).version).toMatch(/^1\./);
  });

  it('refuses a port that is taken, before starting anything', async () => {
    const running = await start(tempDir());
    await expect(startLocalInflux({ dataDir: tempDir(), port: running.port })).rejects.toThrow(/port \d+ for the local influxd is not free/);
  });

  it('reports why influxd did not start, pointing at its log', async () => {
    const dataDir = tempDir();
    // A file where influxd wants its meta directory makes it exit at once.
    writeFileSync(join(dataDir, 'meta'), 'not a directory');
    const error = await startLocalInflux({ dataDir }).catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(InfluxError);
    expect((error as Error).message).toContain(join(dataDir, 'influxd.log'));
    expect((error as Error).message).toMatch(/influxd exited/);
  });
});
