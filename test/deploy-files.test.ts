import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_BROKER_LIMITS } from '@flowpilot/broker';
import { loadSettings } from '@flowpilot/cli';
import { startLocalInflux } from '@flowpilot/influx';
import { openDurableStore } from '@flowpilot/store';
import { eventually } from './helpers/wait.ts';

/**
 * The files that run FlowPilot for months (issue 14, item 4; README, "Run a pilot for months"):
 * the systemd units and their install and backup scripts in deploy/systemd, the Dockerfile and
 * docker-compose.yml. Each is checked by the tool that owns its format where this machine has
 * it (systemd-analyze, docker compose), and by its required keys in any case, so the hardening
 * is asserted on every machine.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEPLOY = join(ROOT, 'deploy/systemd');

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `flowpilot-deploy-${prefix}-`));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function run(command: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  const result = spawnSync(command, args, { cwd: options.cwd ?? ROOT, env: { ...process.env, ...options.env }, encoding: 'utf8', timeout: 120_000 });
  return { code: result.error ? null : result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '', missing: (result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT' };
}

const hasCommand = (command: string) => run('sh', ['-c', `command -v ${command}`]).code === 0;

// --- systemd units ---------------------------------------------------------------------------

/** A unit file: section → key → every value assigned, in order (systemd's own syntax, systemd.syntax(7)). */
type UnitFile = Map<string, Map<string, string[]>>;

function parseUnit(text: string, name: string): UnitFile {
  const sections: UnitFile = new Map();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.replace(/\\\n/g, ' ').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      const section = header[1] as string;
      current = sections.get(section) ?? new Map<string, string[]>();
      sections.set(section, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0 || !current) throw new Error(`${name}: "${line}" is neither a [Section] nor a Key=value inside one`);
    const key = line.slice(0, eq).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

const UNIT_SUFFIXES = ['.service', '.target', '.timer'];
const unitNames = readdirSync(DEPLOY)
  .filter((file) => UNIT_SUFFIXES.some((suffix) => file.endsWith(suffix)))
  .sort();
const units = new Map(unitNames.map((name) => [name, parseUnit(readFileSync(join(DEPLOY, name), 'utf8'), name)]));

function unit(name: string): UnitFile {
  const found = units.get(name);
  if (!found) throw new Error(`deploy/systemd/${name} is missing`);
  return found;
}

/** Every value of a key; an empty assignment resets a list, as systemd does. */
function values(file: UnitFile, section: string, key: string): string[] {
  const all = file.get(section)?.get(key) ?? [];
  const reset = all.lastIndexOf('');
  return all.slice(reset + 1);
}

/** The value in force: the last one assigned (undefined when never). */
function value(file: UnitFile, section: string, key: string): string | undefined {
  return file.get(section)?.get(key)?.at(-1);
}

/** The words of a list-valued key (Wants=, After=, RestrictAddressFamilies=, ReadWritePaths=). */
const words = (file: UnitFile, section: string, key: string): string[] => values(file, section, key).flatMap((v) => v.split(/\s+/).filter(Boolean));

/** A systemd time span ("10s", "1min", "500ms", "5") in seconds. */
function seconds(span: string | undefined): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m)?$/.exec(span ?? '');
  if (!match) return Number.NaN;
  const n = Number(match[1]);
  const unitName = match[2] ?? 's';
  return unitName === 'ms' ? n / 1000 : unitName === 'min' || unitName === 'm' ? n * 60 : n;
}

const NODE_SERVICES = {
  'flowpilot-broker.service': { command: 'broker', dataDirs: ['/var/lib/flowpilot'], families: ['AF_INET', 'AF_INET6', 'AF_UNIX'] },
  // AF_NETLINK: Fastify on 0.0.0.0 and the e-mail client call os.networkInterfaces() (the unit says so).
  'flowpilot-api.service': { command: 'api', dataDirs: ['/var/lib/flowpilot'], families: ['AF_INET', 'AF_INET6', 'AF_UNIX', 'AF_NETLINK'] },
  'flowpilot-gateway.service': { command: 'gateway --config /etc/flowpilot/gateway.yaml', dataDirs: ['/var/lib/flowpilot/gateway'], families: ['AF_INET', 'AF_INET6', 'AF_UNIX'] },
} as const;

/** What every service of FlowPilot's must say, whatever checks its syntax. */
function expectHardened(name: string, file: UnitFile, dataDirs: readonly string[], families: readonly string[]): void {
  const yes = (key: string) => expect(value(file, 'Service', key), `${name}: ${key}=yes`).toBe('yes');
  // A fixed user, not DynamicUser=: the data dir keeps one owner across restarts and restores.
  expect(value(file, 'Service', 'User'), `${name}: User=`).toBe('flowpilot');
  expect(value(file, 'Service', 'DynamicUser') ?? 'no', `${name}: DynamicUser=`).toBe('no');
  expect(value(file, 'Service', 'ProtectSystem'), `${name}: ProtectSystem=`).toBe('strict');
  expect(words(file, 'Service', 'ReadWritePaths').sort(), `${name}: ReadWritePaths= only the data`).toEqual([...dataDirs].sort());
  for (const key of ['NoNewPrivileges', 'PrivateTmp', 'ProtectHome', 'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectKernelLogs', 'ProtectControlGroups']) yes(key);
  // Empty: no capability at all (every port is ≥ 1024).
  expect(file.get('Service')?.has('CapabilityBoundingSet'), `${name}: CapabilityBoundingSet= is set`).toBe(true);
  expect(values(file, 'Service', 'CapabilityBoundingSet'), `${name}: CapabilityBoundingSet= empty`).toEqual([]);
  const allowed = new Set(families);
  const asked = words(file, 'Service', 'RestrictAddressFamilies');
  expect(asked.length, `${name}: RestrictAddressFamilies= is set`).toBeGreaterThan(0);
  expect(asked.filter((family) => !allowed.has(family)), `${name}: address families beyond ${families.join(' ')}`).toEqual([]);
  expect(words(file, 'Service', 'SystemCallFilter'), `${name}: SystemCallFilter=`).toContain('@system-service');
  expect(value(file, 'Service', 'UMask'), `${name}: UMask=`).toBe('0077');
  expect(value(file, 'Service', 'Restart'), `${name}: Restart=`).toBe('on-failure');
  expect(seconds(value(file, 'Service', 'RestartSec')), `${name}: RestartSec=`).toBeGreaterThan(0);
  // The services stop within 5 s (README, "Operating it"); the unit waits a little longer, not minutes.
  const stopSec = seconds(value(file, 'Service', 'TimeoutStopSec'));
  expect(stopSec, `${name}: TimeoutStopSec= ≥ 5 s`).toBeGreaterThanOrEqual(5);
  expect(stopSec, `${name}: TimeoutStopSec= ≤ 30 s`).toBeLessThanOrEqual(30);
  expect(Number(value(file, 'Service', 'LimitNOFILE')), `${name}: LimitNOFILE=`).toBeGreaterThanOrEqual(1024);
  // Node's JIT compiler needs writable and executable memory.
  expect(value(file, 'Service', 'MemoryDenyWriteExecute') ?? 'no', `${name}: no MemoryDenyWriteExecute= for Node`).toBe('no');
}

describe('deploy/systemd units', () => {
  it('every unit is installed by install.sh', () => {
    const script = readFileSync(join(DEPLOY, 'install.sh'), 'utf8');
    const listed = /^UNITS=\(([^)]*)\)/m.exec(script)?.[1]?.split(/\s+/).filter(Boolean) ?? [];
    expect(listed.sort()).toEqual(unitNames);
  });

  it('run each service of a single host as the flowpilot user, hardened, from /opt/flowpilot with /etc/flowpilot/flowpilot.env', () => {
    for (const [name, expected] of Object.entries(NODE_SERVICES)) {
      const file = unit(name);
      expectHardened(name, file, expected.dataDirs, expected.families);
      expect(value(file, 'Service', 'Type'), `${name}: Type=`).toBe('exec');
      expect(value(file, 'Service', 'WorkingDirectory'), `${name}: WorkingDirectory=`).toBe('/opt/flowpilot');
      expect(values(file, 'Service', 'EnvironmentFile').map((f) => f.replace(/^-/, '')), `${name}: EnvironmentFile=`).toContain('/etc/flowpilot/flowpilot.env');
      expect(value(file, 'Service', 'ExecStart'), `${name}: ExecStart=`).toBe(`/usr/bin/node /opt/flowpilot/apps/flowpilot/bin/flowpilot.js ${expected.command}`);
      expect(words(file, 'Unit', 'PartOf'), `${name}: PartOf=`).toContain('flowpilot.target');
      expect(words(file, 'Install', 'WantedBy'), `${name}: WantedBy=`).toContain('flowpilot.target');
    }
  });

  it('give the broker and the API InfluxDB (wanted, not required) and their own details', () => {
    const broker = unit('flowpilot-broker.service');
    const api = unit('flowpilot-api.service');
    for (const [name, file] of [['broker', broker], ['api', api]] as const) {
      expect(words(file, 'Unit', 'Wants'), `${name}: Wants=`).toContain('influxdb.service');
      expect(words(file, 'Unit', 'After'), `${name}: After=`).toContain('influxdb.service');
      // The broker goes on acknowledging into the durable store while InfluxDB is down.
      expect(words(file, 'Unit', 'Requires'), `${name}: Requires=`).not.toContain('influxdb.service');
      expect(words(file, 'Unit', 'BindsTo'), `${name}: BindsTo=`).not.toContain('influxdb.service');
      expect(value(file, 'Service', 'PrivateDevices'), `${name}: PrivateDevices=`).toBe('yes');
    }
    // One descriptor per connected meter.
    expect(Number(value(broker, 'Service', 'LimitNOFILE'))).toBeGreaterThan(DEFAULT_BROKER_LIMITS.maxConnections);
    expect(words(api, 'Unit', 'After')).toContain('flowpilot-broker.service');
  });

  it('let the gateway reach the serial adapters and nothing else of /dev', () => {
    const gateway = unit('flowpilot-gateway.service');
    expect(words(gateway, 'Service', 'SupplementaryGroups')).toEqual(['dialout']);
    expect(value(gateway, 'Service', 'PrivateDevices') ?? 'no').toBe('no');
    expect(value(gateway, 'Service', 'DevicePolicy')).toBe('closed');
    const devices = values(gateway, 'Service', 'DeviceAllow');
    expect(devices.length).toBeGreaterThan(0);
    for (const device of devices) expect(device).toMatch(/^char-tty[A-Za-z]+ rw$/);
    expect(words(gateway, 'Install', 'WantedBy')).toContain('multi-user.target');
  });

  it('group them in flowpilot.target, started at boot', () => {
    const target = unit('flowpilot.target');
    expect(words(target, 'Unit', 'Wants').sort()).toEqual(['flowpilot-api.service', 'flowpilot-broker.service']);
    expect(words(target, 'Install', 'WantedBy')).toEqual(['multi-user.target']);
  });

  it('back up every night as the flowpilot user, into /var/backups/flowpilot only', () => {
    const backup = unit('flowpilot-backup.service');
    expect(value(backup, 'Service', 'Type')).toBe('oneshot');
    expect(value(backup, 'Service', 'User')).toBe('flowpilot');
    expect(value(backup, 'Service', 'ProtectSystem')).toBe('strict');
    expect(value(backup, 'Service', 'NoNewPrivileges')).toBe('yes');
    expect(values(backup, 'Service', 'CapabilityBoundingSet')).toEqual([]);
    expect(words(backup, 'Service', 'ReadWritePaths').sort()).toEqual(['/var/backups/flowpilot', '/var/lib/flowpilot']);
    expect(value(backup, 'Service', 'ExecStart')).toMatch(/^\/usr\/local\/bin\/flowpilot-backup --keep \d+ \/var\/backups\/flowpilot$/);
    const timer = unit('flowpilot-backup.timer');
    expect(value(timer, 'Timer', 'OnCalendar')).toBeTruthy();
    expect(value(timer, 'Timer', 'Persistent')).toMatch(/^(yes|true)$/);
    expect(words(timer, 'Install', 'WantedBy')).toEqual(['timers.target']);
  });

  it('pass systemd-analyze verify, and score as exposed "OK" or better in its security analysis, where systemd-analyze exists', () => {
    const version = run('systemd-analyze', ['--version']);
    if (version.code !== 0) {
      console.log('[deploy-files] systemd-analyze is not on this machine: the units were checked by their keys only (above)');
      return;
    }
    // The units as installed, with the commands install.sh puts in place taken from this checkout.
    const dir = tempDir('units');
    const backupCommand = join(dir, 'flowpilot-backup');
    writeFileSync(backupCommand, readFileSync(join(DEPLOY, 'backup.sh')), { mode: 0o755 });
    for (const name of unitNames) {
      let text = readFileSync(join(DEPLOY, name), 'utf8').replaceAll('/usr/local/bin/flowpilot-backup', backupCommand);
      if (!existsSync('/usr/bin/node')) text = text.replaceAll('/usr/bin/node', process.execPath);
      writeFileSync(join(dir, name), text);
    }
    const files = unitNames.map((name) => join(dir, name));
    const verify = run('systemd-analyze', ['verify', ...files]);
    // verify exits 0 on unknown keys and bad values, and says so on stderr: none may name our units.
    const complaints = `${verify.stdout}\n${verify.stderr}`.split('\n').filter((line) => line.includes(dir) || unitNames.some((name) => line.includes(name)));
    expect(complaints, 'systemd-analyze verify').toEqual([]);
    expect(verify.code).toBe(0);
    console.log(`[deploy-files] ${version.stdout.split('\n')[0]}: verify ran on ${unitNames.length} units, no complaint`);

    const scores: string[] = [];
    for (const name of [...Object.keys(NODE_SERVICES), 'flowpilot-backup.service']) {
      const security = run('systemd-analyze', ['security', '--offline=true', join(dir, name)]);
      const score = /Overall exposure level for \S+: ([\d.]+)/.exec(security.stdout)?.[1];
      if (security.code === null || score === undefined) {
        console.log(`[deploy-files] systemd-analyze security --offline is not available here (${security.stderr.trim().split('\n')[0]})`);
        return;
      }
      // systemd rates 0–10; below 2 is "OK", the best band short of a unit with no network.
      expect(Number(score), `${name}: exposure`).toBeLessThan(2);
      scores.push(`${name} ${score}`);
    }
    console.log(`[deploy-files] systemd-analyze security --offline: ${scores.join(', ')}`);
  });
});

// --- the settings file --------------------------------------------------------------------------

/** KEY=value lines as systemd's EnvironmentFile= and Node's --env-file read them (no quoting used). */
function parseEnvFile(text: string): { set: Record<string, string>; named: Set<string> } {
  const set: Record<string, string> = {};
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!match) throw new Error(`flowpilot.env: "${line}" is not KEY=value`);
    set[match[1] as string] = match[2] as string;
  }
  return { set, named: new Set(text.match(/\bFLOWPILOT_[A-Z0-9_]+/g) ?? []) };
}

describe('deploy/systemd/flowpilot.env', () => {
  const { set, named } = parseEnvFile(readFileSync(join(DEPLOY, 'flowpilot.env'), 'utf8'));

  it('is a valid configuration for the systemd services: InfluxDB given, the data dir in /var/lib/flowpilot', () => {
    const settings = loadSettings(set, '/opt/flowpilot');
    expect(settings.dataDir).toBe('/var/lib/flowpilot');
    expect(settings.pilotFile).toBe('/etc/flowpilot/pilot.yaml');
    // Unset, the broker would start an influxd of its own in the data dir.
    expect(settings.influxUrl).toBe('http://127.0.0.1:8086');
    expect(settings.httpHost).toBe('127.0.0.1');
    expect(settings.allowAnonymous).toBe(false);
  });

  it('names every setting of settings.ts, and no other FLOWPILOT_ variable than the ones the code reads', () => {
    const settingsSource = readFileSync(join(ROOT, 'apps/flowpilot/src/settings.ts'), 'utf8');
    const settingNames = new Set(settingsSource.match(/'FLOWPILOT_[A-Z0-9_]+'/g)?.map((s) => s.slice(1, -1)) ?? []);
    expect(settingNames.size).toBeGreaterThan(30);
    expect([...settingNames].filter((name) => !named.has(name)), 'settings missing from flowpilot.env').toEqual([]);
    // Read outside settings.ts: the gateway's file (gateway-command.ts), the commit (provenance.ts).
    const known = new Set([...settingNames, 'FLOWPILOT_GATEWAY_CONFIG', 'FLOWPILOT_COMMIT']);
    expect([...named].filter((name) => !known.has(name)), 'unknown names in flowpilot.env').toEqual([]);
  });
});

// --- install.sh and flowpilot-backup ------------------------------------------------------------

function mode(path: string): string {
  return (statSync(path).mode & 0o777).toString(8).padStart(4, '0');
}

describe('deploy/systemd/install.sh', () => {
  it('and the other scripts pass bash -n, and shellcheck where it exists', () => {
    const scripts = ['install.sh', 'backup.sh', 'flowpilot'].map((name) => join(DEPLOY, name));
    for (const script of scripts) expect(run('bash', ['-n', script]).code, script).toBe(0);
    if (!hasCommand('shellcheck')) {
      console.log('[deploy-files] shellcheck is not on this machine: the scripts were checked with bash -n only');
      return;
    }
    const checked = run('shellcheck', scripts);
    expect(checked.stdout, 'shellcheck').toBe('');
    expect(checked.code).toBe(0);
    console.log('[deploy-files] shellcheck: install.sh, backup.sh and flowpilot clean');
  });

  it('lays out the directories private, the settings readable by the services only, the units and commands; a second run keeps the site\'s edits', () => {
    const root = tempDir('install');
    const install = () => run('bash', [join(DEPLOY, 'install.sh')], { env: { DESTDIR: root, FLOWPILOT_COMMIT: '0123456789abcdef0123456789abcdef01234567' } });
    const first = install();
    expect(first.code, first.stderr).toBe(0);
    const at = (path: string) => join(root, path);
    expect(mode(at('var/lib/flowpilot'))).toBe('0700');
    expect(mode(at('var/lib/flowpilot/gateway'))).toBe('0700');
    expect(mode(at('var/backups/flowpilot'))).toBe('0700');
    expect(mode(at('etc/flowpilot'))).toBe('0750');
    expect(mode(at('etc/flowpilot/flowpilot.env'))).toBe('0640');
    expect(mode(at('etc/flowpilot/pilot.yaml'))).toBe('0640');
    expect(readFileSync(at('etc/flowpilot/release.env'), 'utf8')).toContain('FLOWPILOT_COMMIT=0123456789abcdef0123456789abcdef01234567');
    for (const name of unitNames) {
      expect(mode(at(`etc/systemd/system/${name}`))).toBe('0644');
      expect(readFileSync(at(`etc/systemd/system/${name}`), 'utf8')).toBe(readFileSync(join(DEPLOY, name), 'utf8'));
    }
    expect(mode(at('usr/local/bin/flowpilot'))).toBe('0755');
    expect(mode(at('usr/local/bin/flowpilot-backup'))).toBe('0755');
    expect(existsSync(at('etc/systemd/journald.conf.d/flowpilot.conf'))).toBe(true);

    writeFileSync(at('etc/flowpilot/flowpilot.env'), 'FLOWPILOT_LOG_LEVEL=debug\n');
    chmodSync(at('var/lib/flowpilot'), 0o755);
    const second = install();
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('kept /etc/flowpilot/flowpilot.env');
    expect(readFileSync(at('etc/flowpilot/flowpilot.env'), 'utf8')).toBe('FLOWPILOT_LOG_LEVEL=debug\n');
    // An existing data dir is brought back to 0700.
    expect(mode(at('var/lib/flowpilot'))).toBe('0700');
  });
});

describe('deploy/systemd/backup.sh (flowpilot-backup)', () => {
  it('copies a store in use and InfluxDB\'s database, and both restore as the README says', async () => {
    const missing = ['sqlite3', 'influxd'].filter((command) => !hasCommand(command));
    if (missing.length > 0) {
      console.log(`[deploy-files] backup not tried: ${missing.join(' and ')} missing here (apt-get install sqlite3 influxdb)`);
      return;
    }
    // InfluxDB of its own: the backup speaks to its backup (RPC) port, which only its config names.
    const influx = await startLocalInflux({ dataDir: tempDir('influx') });
    cleanups.push(() => influx.stop());
    const rpc = /^bind-address = "([^"]+)"/m.exec(readFileSync(join(influx.dataDir, 'influxd.conf'), 'utf8'))?.[1];
    expect(rpc).toBeTruthy();
    const database = 'deploy_backup';
    const query = async (q: string) => (await fetch(`${influx.url}/query?db=${database}`, { method: 'POST', body: new URLSearchParams({ q }) })).json() as Promise<{ results: { series?: { values: unknown[][] }[]; error?: string }[] }>;
    await query(`CREATE DATABASE ${database}`);
    const write = await fetch(`${influx.url}/write?db=${database}&precision=ms`, { method: 'POST', body: 'reading,meter=M1 flow=1,total=10 1700000000000\nreading,meter=M1 flow=2,total=11 1700000060000\n' });
    expect(write.status).toBe(204);

    // A data dir as the services leave it, with the store open (WAL) while the backup runs.
    const dataDir = join(tempDir('data'), 'flowpilot');
    mkdirSync(join(dataDir, 'tls'), { recursive: true, mode: 0o700 });
    mkdirSync(join(dataDir, 'broker-sessions'), { mode: 0o700 });
    writeFileSync(join(dataDir, 'credentials.json'), '{}\n', { mode: 0o600 });
    writeFileSync(join(dataDir, 'tls/ca.key'), 'key\n', { mode: 0o600 });
    writeFileSync(join(dataDir, 'broker-sessions/LOCK'), '');
    const store = openDurableStore({ path: join(dataDir, 'spool.sqlite') });
    cleanups.push(() => store.close());
    const line = (n: number) => `reading,meter=M1 flow=${n},total=${n} ${1_700_000_000_000 + n}`;
    await store.append([1, 2, 3].map((n) => ({ receivedAtMs: Date.now(), line: line(n), meterId: 'M1', kind: 'reading' as const, tsMs: 1_700_000_000_000 + n })));

    const backups = tempDir('backups');
    const backup = () =>
      run('bash', [join(DEPLOY, 'backup.sh'), '--influx-host', rpc as string, '--keep', '1', backups], {
        env: { FLOWPILOT_DATA_DIR: dataDir, FLOWPILOT_INFLUX_DB: database, FLOWPILOT_COMMIT: 'test-commit' },
      });
    const first = backup();
    expect(first.code, first.stderr).toBe(0);
    const made = readdirSync(backups);
    expect(made).toHaveLength(1);
    const copy = join(backups, made[0] as string);
    expect(first.stdout.trim()).toBe(`flowpilot-backup: ${copy}`);
    expect(readFileSync(join(copy, 'MANIFEST'), 'utf8')).toContain('release: test-commit');
    expect(run('sha256sum', ['--quiet', '-c', 'SHA256SUMS'], { cwd: copy }).code).toBe(0);
    // Private files stay private; the sessions (locked while the broker runs) are left out.
    expect(mode(join(copy, 'data/credentials.json'))).toBe('0600');
    expect(mode(join(copy, 'data/tls/ca.key'))).toBe('0600');
    expect(existsSync(join(copy, 'data/broker-sessions'))).toBe(false);
    const copied = openDurableStore({ path: join(copy, 'data/spool.sqlite') });
    expect(copied.depth().records).toBe(3);
    copied.close();

    // Restore InfluxDB's part as the README says: drop the database, then influxd restore -portable.
    await query(`DROP DATABASE ${database}`);
    const restore = run('influxd', ['restore', '-portable', '-db', database, '-host', rpc as string, join(copy, 'influxdb')]);
    expect(restore.code, restore.stderr).toBe(0);
    // Right after a restore the shard may still be opening ("engine is closed").
    const count = async () => (await query('SELECT count(flow) FROM reading')).results[0]?.series?.[0]?.values[0]?.[1];
    await eventually(count, (n) => n === 2, 10_000, (n) => `the restored database to count 2 readings, not ${String(n)}`);

    // --keep 1: the next night's backup replaces this one (names are whole seconds apart).
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const second = backup();
    expect(second.code, second.stderr).toBe(0);
    const kept = readdirSync(backups);
    expect(kept).toHaveLength(1);
    expect(kept[0]).not.toBe(made[0]);
  });
});

// --- Docker -------------------------------------------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
}

/** The Dockerfile's stages, each with its instructions (continuation lines joined, comments dropped). */
function dockerStages(text: string): { from: string; instructions: Instruction[] }[] {
  const stages: { from: string; instructions: Instruction[] }[] = [];
  const logical = text
    .split('\n')
    .filter((line) => !line.trim().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n');
  for (const line of logical) {
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const instruction = { keyword: (match[1] as string).toUpperCase(), args: (match[2] as string).trim() };
    if (instruction.keyword === 'FROM') stages.push({ from: instruction.args, instructions: [] });
    else stages.at(-1)?.instructions.push(instruction);
  }
  return stages;
}

/** Each workspace's folder, from the root package.json's globs (`packages/*`, …). */
function workspaceFolders(): string[] {
  const { workspaces } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] };
  return workspaces.flatMap((glob) => {
    const parent = glob.replace(/\/\*$/, '');
    return readdirSync(join(ROOT, parent))
      .filter((entry) => existsSync(join(ROOT, parent, entry, 'package.json')))
      .map((entry) => `${parent}/${entry}`);
  });
}

const COMPILERS = /\b(build-essential|g\+\+|gcc|clang|make|python3?)\b/;

describe('Dockerfile', () => {
  const stages = dockerStages(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  const runtime = stages.at(-1);

  it('builds in one stage and runs from another, without compilers, as a user other than root', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    if (!runtime) throw new Error('no stage');
    expect(runtime.from).toMatch(/^node:20-bookworm-slim\b/);
    const runs = runtime.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs.filter((args) => COMPILERS.test(args)), 'compilers in the runtime stage').toEqual([]);
    // Nothing copied from the build stage but the application folder (not its toolchain).
    const fromBuild = runtime.instructions.filter((i) => i.keyword === 'COPY' && i.args.includes('--from='));
    for (const copy of fromBuild) expect(copy.args).toMatch(/--from=\S+ \/app\b/);
    const user = runtime.instructions.filter((i) => i.keyword === 'USER').at(-1)?.args;
    expect(user, 'USER in the runtime stage').toBeTruthy();
    expect(['root', '0', '0:0', 'root:root']).not.toContain(user);
    expect(runtime.instructions.some((i) => i.keyword === 'HEALTHCHECK' && i.args.includes('CMD'))).toBe(true);
    expect(runtime.instructions.find((i) => i.keyword === 'ENTRYPOINT')?.args).toContain('apps/flowpilot/bin/flowpilot.js');
    // The commit a PDF report names.
    expect(runtime.instructions.some((i) => i.keyword === 'ARG' && i.args.startsWith('FLOWPILOT_COMMIT'))).toBe(true);
    expect(runtime.instructions.some((i) => i.keyword === 'ENV' && i.args.includes('FLOWPILOT_COMMIT=${FLOWPILOT_COMMIT}'))).toBe(true);
  });

  it('gives the data volume to the user the services run as, before declaring it', () => {
    if (!runtime) throw new Error('no stage');
    const index = (predicate: (i: Instruction) => boolean) => runtime.instructions.findIndex(predicate);
    const volume = index((i) => i.keyword === 'VOLUME' && i.args.includes('/data'));
    const chown = index((i) => i.keyword === 'RUN' && /chown node(:node)? \/data/.test(i.args));
    expect(volume).toBeGreaterThan(-1);
    expect(chown).toBeGreaterThan(-1);
    expect(chown).toBeLessThan(volume);
    expect(runtime.instructions.filter((i) => i.keyword === 'USER').at(-1)?.args).toBe('node');
  });

  it('copies every workspace\'s package.json before npm ci --omit=dev, in a stage with the compilers', () => {
    const build = stages.find((stage) => stage.instructions.some((i) => i.keyword === 'RUN' && i.args.includes('npm ci')));
    if (!build) throw new Error('no stage runs npm ci');
    expect(build).not.toBe(runtime);
    const npmCi = build.instructions.findIndex((i) => i.keyword === 'RUN' && i.args.includes('npm ci'));
    expect(build.instructions[npmCi]?.args).toContain('--omit=dev');
    expect(build.instructions.slice(0, npmCi).some((i) => i.keyword === 'RUN' && COMPILERS.test(i.args))).toBe(true);
    const copied = new Set(
      build.instructions
        .slice(0, npmCi)
        .filter((i) => i.keyword === 'COPY')
        .flatMap((i) => i.args.split(/\s+/).filter((word) => !word.startsWith('--')).slice(0, -1)),
    );
    const manifests = ['package.json', 'package-lock.json', ...workspaceFolders().map((folder) => `${folder}/package.json`)];
    expect(manifests.filter((manifest) => !copied.has(manifest)), 'manifests not copied before npm ci').toEqual([]);
  });

  it('leaves the installed modules and the data out of the build context', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    expect(ignored).toContain('**/node_modules');
    expect(ignored).toContain('.git');
    expect(ignored).toContain('**/.flowpilot*');
  });
});

interface ComposeService {
  restart?: string;
  user?: string;
  healthcheck?: { test?: string[] | string; disable?: boolean };
  logging?: { driver?: string; options?: Record<string, string> };
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  profiles?: string[];
}

describe('docker-compose.yml', () => {
  const compose = parseYaml(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, ComposeService>;
    volumes?: Record<string, unknown>;
  };
  const services = Object.entries(compose.services);

  it('restarts, health-checks and rotates the logs of every service, none of them as root', () => {
    expect(services.map(([name]) => name).sort()).toEqual(['api', 'broker', 'influxdb', 'ingest', 'simulator']);
    for (const [name, service] of services) {
      expect(service.restart, `${name}: restart`).toBe('unless-stopped');
      expect(service.healthcheck?.disable ?? false, `${name}: healthcheck`).toBe(false);
      expect(service.healthcheck?.test?.length ?? 0, `${name}: healthcheck.test`).toBeGreaterThan(0);
      expect(service.user, `${name}: user`).toBeTruthy();
      expect(String(service.user).split(':')[0], `${name}: user`).not.toMatch(/^(root|0)$/);
      expect(service.logging?.driver, `${name}: logging.driver`).toBe('json-file');
      expect(service.logging?.options?.['max-size'], `${name}: logging max-size`).toBeTruthy();
      expect(service.logging?.options?.['max-file'], `${name}: logging max-file`).toBeTruthy();
    }
  });

  it('keeps InfluxDB\'s data on a named volume, and runs the simulator only in the demo profile', () => {
    const influxVolumes = (compose.services.influxdb?.volumes ?? []).map((v) => (typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1] } : v));
    const data = influxVolumes.find((v) => v.target === '/var/lib/influxdb');
    expect(data?.source, 'InfluxDB /var/lib/influxdb').toMatch(/^[A-Za-z0-9][\w.-]*$/);
    expect(Object.keys(compose.volumes ?? {})).toContain(data?.source);
    expect(compose.services.simulator?.profiles).toEqual(['demo']);
    for (const [name, service] of services) if (name !== 'simulator') expect(service.profiles, `${name}: profiles`).toBeUndefined();
  });

  it('is valid for docker compose, where its client exists', () => {
    const plugin = run('docker', ['compose', 'version']);
    const standalone = plugin.code === 0 ? null : run('docker-compose', ['version', '--short']);
    const [command, args] = plugin.code === 0 ? ['docker', ['compose']] : standalone?.code === 0 ? ['docker-compose', []] : [null, []];
    if (command === null) {
      console.log('[deploy-files] neither `docker compose` nor docker-compose is on this machine: docker-compose.yml was checked by its keys only');
      return;
    }
    const checked = run(command, [...args, '--profile', 'demo', 'config', '-q']);
    expect(checked.code, checked.stderr).toBe(0);
    console.log(`[deploy-files] ${command} ${[...args, '--profile demo config -q'].join(' ')}: valid (${(plugin.code === 0 ? plugin.stdout : (standalone?.stdout ?? '')).trim()})`);
  });
});
