import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { fixedHeader, nestedArrays } from '../test/helpers/mqtt-bytes.ts';
import { freePort, waitForPort } from '../test/helpers/ports.ts';

/**
 * The broker's memory under the hostile clients of SPEC section 8, as a real `flowpilot broker`
 * process: `npx tsx bench/attack-rss.ts`. Prints its RSS before and its peak (VmHWM) after
 * 20 CONNECTs announcing 256 MiB, a PUBLISH announcing 100 MiB after login, 200 silent
 * connections, and deeply nested payloads; then checks an honest reading is still acknowledged.
 * The two password logins cost one scrypt each (32 MiB, transient): part of the peak.
 */
const dataDir = mkdtempSync(join(tmpdir(), 'flowpilot-attack-'));
const port = await freePort();
const pilot = join(dataDir, 'pilot.yaml');
writeFileSync(pilot, 'pilot: { id: attack, name: Attack, timezone: UTC }\nmeters:\n  - { id: M1, site: S, role: monitor, intervalSec: 60 }\n  - { id: M2, site: S, role: monitor, intervalSec: 60 }\n');
const cli = join(import.meta.dirname, '../apps/flowpilot/bin/flowpilot.js');
const env = { ...process.env, FLOWPILOT_DATA_DIR: dataDir, FLOWPILOT_PILOT: pilot, FLOWPILOT_MQTT_PORT: String(port), FLOWPILOT_METRICS_PORT: String(await freePort()), FLOWPILOT_LOG_LEVEL: 'error' };
function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { env });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(out))));
  });
}
// Passwords from files: `credentials add` takes none on the command line (SPEC section 8).
for (const [id, password] of [['M1', 'pw1'], ['M2', 'pw2']] as const) {
  const file = join(dataDir, `${id}.secret`);
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  await run(['credentials', 'add', id, '--password-file', file]);
}
const broker = spawn(process.execPath, [cli, 'broker', '--no-ingest'], { env, stdio: 'ignore' });
await waitForPort(port, 30_000);
await new Promise((r) => setTimeout(r, 1000));
const status = () => readFileSync(`/proc/${broker.pid}/status`, 'utf8');
const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status())?.[1] ?? 0);
const before = kib('VmRSS');

function raw(): Promise<Socket> {
  return new Promise((resolve) => {
    const socket = connectTcp(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', () => {});
  });
}

const body = Buffer.alloc(512 * 1024, 0x41);
const big = await Promise.all(Array.from({ length: 20 }, raw));
for (const socket of big) {
  socket.write(fixedHeader(0x10, 268_435_455));
  socket.write(body);
}
const silent = await Promise.all(Array.from({ length: 200 }, raw));
const m2 = await connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'M2', username: 'M2', password: 'pw2', protocolVersion: 4, reconnectPeriod: 0 });
for (const depth of [5_000, 100_000]) await m2.publishAsync('meters/M2/readings', `{"v":1,"meterId":"M2","x":${nestedArrays(depth)}}`, { qos: 1 }).catch(() => {});
m2.stream.write(fixedHeader(0x32, 100 * 2 ** 20));
m2.stream.write(body);
await new Promise((r) => setTimeout(r, 2000));
const m1 = await connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'M1', username: 'M1', password: 'pw1', protocolVersion: 4, reconnectPeriod: 0 });
await m1.publishAsync('meters/M1/readings', JSON.stringify({ v: 1, meterId: 'M1', seq: 1, ts: Date.now() - 1000, flow: 1, total: 1 }), { qos: 1 });
console.log(`broker RSS before ${Math.round(before / 1024)} MiB, peak ${Math.round(kib('VmHWM') / 1024)} MiB, after ${Math.round(kib('VmRSS') / 1024)} MiB; honest reading acknowledged; broker alive: ${broker.exitCode === null}`);
await m1.endAsync(true);
for (const s of [...big, ...silent]) s.destroy();
broker.kill('SIGTERM');
await new Promise((r) => broker.once('exit', r));
rmSync(dataDir, { recursive: true, force: true });
process.exit(0);
