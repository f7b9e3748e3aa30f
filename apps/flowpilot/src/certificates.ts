import { execFile } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { FlowPilotError, isValidMeterId } from '@flowpilot/schema';

/**
 * The certificates of one pilot site (SPEC section 8), made with Debian's `openssl` command so
 * that a site needs nothing else: a site CA, the server certificate of the broker's mqtts
 * listener and the API's HTTPS, and one client certificate per meter whose CN is the meter id
 * (the broker logs such a client in as that meter without a password).
 *
 * Keys are EC P-256 (ECDSA with SHA-256): small enough for a meter's TLS stack (mbedTLS,
 * wolfSSL, BearSSL all speak it) and as strong as RSA 3072. openssl runs through execFile with
 * argument arrays, never a shell; a key only ever travels as a file path, never on a command
 * line; configuration and extension files are temp files, removed afterwards.
 *
 * Layout of a site directory (0700; keys 0600, written under a temp name then renamed):
 *   ca.key, ca.crt                   the site CA (reused when present, never overwritten)
 *   server.key, server.crt           the broker's and the API's certificate
 *   clients/<cn>.key, <cn>.crt       one per meter or service login
 */

export interface CertificateFiles {
  keyPath: string;
  certPath: string;
  /** The certificate's last day of validity. */
  notAfter: Date;
  /** SHA-256 fingerprint, colon-separated hex, as `openssl x509 -fingerprint -sha256` prints it. */
  fingerprint256: string;
}

export interface SiteCa extends CertificateFiles {
  /** False when an existing CA was found and reused. */
  created: boolean;
}

export interface ServerCertificate extends CertificateFiles {
  dnsNames: string[];
  ipAddresses: string[];
}

export interface ClientCertificate extends CertificateFiles {
  commonName: string;
}

export interface CertificateInfo {
  /** Path relative to the site directory, e.g. `clients/ALM-PS3-DUT1.crt`. */
  file: string;
  /** As openssl prints it, e.g. `CN = ALM-PS3-DUT1`. */
  subject: string;
  /** As openssl prints it, e.g. `DNS:localhost, IP Address:127.0.0.1`; null when absent. */
  subjectAltName: string | null;
  notAfter: Date;
}

export const DEFAULT_CERTIFICATE_OPTIONS = {
  caName: 'FlowPilot site CA',
  /** The CA outlives the certificates it signs; re-running `init` reuses it. */
  caDays: 3650,
  /** 825 days: the longest validity that every TLS client still accepts for a server. */
  days: 825,
  hosts: ['localhost', '127.0.0.1'],
} as const;

const CA_KEY = 'ca.key';
const CA_CERT = 'ca.crt';
const SERVER_KEY = 'server.key';
const SERVER_CERT = 'server.crt';
const CLIENTS_DIR = 'clients';
const MAX_DAYS = 36_500;
const OPENSSL_TIMEOUT_MS = 60_000;
/** Characters that need no escaping in `openssl -subj` (`/`, `=`, `+`, `\` are special there). */
const CA_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9 _.,()-]{0,63}$/;
/** RFC 1123 host names: labels of letters, digits and inner hyphens, 253 characters at most. */
const DNS_NAME_PATTERN = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

const execFileAsync = promisify(execFile);

// ---------------------------------------------------------------------------------------------
// openssl

function opensslMissing(cause?: unknown): FlowPilotError {
  return new FlowPilotError('ERR_CONFIG', 'openssl is not installed: apt-get install openssl', { cause });
}

/** `openssl version`, or ERR_CONFIG naming the package to install. */
export async function checkOpenssl(binary = 'openssl'): Promise<string> {
  try {
    const { stdout } = await execFileAsync(binary, ['version'], { timeout: OPENSSL_TIMEOUT_MS });
    return stdout.trim();
  } catch (error) {
    throw opensslMissing(error);
  }
}

async function openssl(args: string[]): Promise<string> {
  try {
    // No shell, and a minimal environment so that a stray OPENSSL_CONF cannot change what is made.
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    const { stdout } = await execFileAsync('openssl', args, { timeout: OPENSSL_TIMEOUT_MS, env, maxBuffer: 4 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw opensslMissing(error);
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    // openssl x509 -req reports progress on stderr too ("Certificate request self-signature ok").
    const progress = /^(Certificate request self-signature ok|subject=)/;
    const reason = stderr.split('\n').filter((line) => line.trim() !== '' && !progress.test(line)).slice(0, 3).join('; ') || (error as Error).message;
    throw new FlowPilotError('ERR_CONFIG', `openssl ${args[0] ?? ''} failed: ${reason}`, { cause: error });
  }
}

/** Runs `work` with a private temp directory (0700, from mkdtemp) that is removed afterwards. */
async function withTempDir<T>(work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'flowpilot-certs-'));
  try {
    return await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A random serial of 16 octets (RFC 5280 4.1.2.2: positive, at most 20 octets; CA/Browser
 * Forum: at least 64 random bits): the top bit cleared keeps it positive, the lowest bit of the
 * first octet set keeps it 16 octets long.
 */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return `0x${bytes.toString('hex')}`;
}

/** The `[req]` section that openssl req needs; the subject itself comes from -subj. */
const REQ_CONFIG = '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n';

async function makeDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700); // an existing directory is tightened too
}

function tempName(path: string): string {
  return `${path}.${randomBytes(6).toString('hex')}.tmp`;
}

async function generateKey(path: string): Promise<void> {
  // Created 0600 before openssl writes into it, so the key is never readable by others.
  await writeFile(path, '', { mode: 0o600, flag: 'wx' });
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
  await chmod(path, 0o600);
}

async function filesOf(keyPath: string, certPath: string): Promise<CertificateFiles> {
  const cert = new X509Certificate(await readFile(certPath));
  return { keyPath, certPath, notAfter: new Date(cert.validTo), fingerprint256: cert.fingerprint256 };
}

/**
 * Issues a key and a certificate signed by the site CA, written under temp names and renamed
 * into place (key first), so a failure never leaves a half-written pair.
 */
async function issue(dir: string, keyPath: string, certPath: string, subject: string, extensions: string, days: number): Promise<void> {
  const { caKey, caCert } = requireCa(dir);
  const keyTemp = tempName(keyPath);
  const certTemp = tempName(certPath);
  try {
    await withTempDir(async (tmp) => {
      const reqConfig = join(tmp, 'req.cnf');
      const extFile = join(tmp, 'ext.cnf');
      const csr = join(tmp, 'request.csr');
      await writeFile(reqConfig, REQ_CONFIG, { mode: 0o600 });
      await writeFile(extFile, extensions, { mode: 0o600 });
      await generateKey(keyTemp);
      await openssl(['req', '-new', '-config', reqConfig, '-key', keyTemp, '-subj', subject, '-sha256', '-out', csr]);
      await openssl([
        'x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-set_serial', randomSerial(),
        '-days', String(days), '-sha256', '-extfile', extFile, '-extensions', 'ext', '-out', certTemp,
      ]);
    });
    await rename(keyTemp, keyPath);
    await rename(certTemp, certPath);
  } finally {
    await rm(keyTemp, { force: true });
    await rm(certTemp, { force: true });
  }
}

function requireCa(dir: string): { caKey: string; caCert: string } {
  const caKey = join(dir, CA_KEY);
  const caCert = join(dir, CA_CERT);
  if (!existsSync(caKey) || !existsSync(caCert)) {
    throw new FlowPilotError('ERR_CONFIG', `no site CA in ${dir}: run \`flowpilot certs init\` first`);
  }
  return { caKey, caCert };
}

function checkDays(days: number, what: string): void {
  if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS) {
    throw new FlowPilotError('ERR_CONFIG', `${what} days ${days}: expected a whole number of days from 1 to ${MAX_DAYS}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The three kinds of certificate

export interface SiteCaOptions {
  dir: string;
  name?: string;
  days?: number;
}

/**
 * The site CA (`ca.key` 0600, `ca.crt`): basicConstraints critical CA:TRUE with pathlen:0 (it
 * signs end certificates only), keyUsage critical keyCertSign, cRLSign. An existing CA is
 * reused, never overwritten: every certificate of the site hangs on it.
 */
export async function createSiteCa(options: SiteCaOptions): Promise<SiteCa> {
  const name = options.name ?? DEFAULT_CERTIFICATE_OPTIONS.caName;
  const days = options.days ?? DEFAULT_CERTIFICATE_OPTIONS.caDays;
  if (!CA_NAME_PATTERN.test(name)) {
    throw new FlowPilotError('ERR_CONFIG', `CA name "${name}": expected up to 64 letters, digits, spaces or _ . , ( ) -`);
  }
  checkDays(days, 'CA');
  const dir = resolve(options.dir);
  const keyPath = join(dir, CA_KEY);
  const certPath = join(dir, CA_CERT);
  const hasKey = existsSync(keyPath);
  const hasCert = existsSync(certPath);
  if (hasKey && hasCert) {
    await chmod(keyPath, 0o600);
    return { ...(await filesOf(keyPath, certPath)), created: false };
  }
  if (hasCert) {
    throw new FlowPilotError(
      'ERR_CONFIG',
      `${certPath} exists without ${CA_KEY}: restore ${keyPath}, or remove ${certPath} to make a new CA (every certificate of the old one must then be issued again)`,
    );
  }
  await checkOpenssl();
  await makeDir(dir);
  const keyTemp = tempName(keyPath);
  const certTemp = tempName(certPath);
  try {
    await withTempDir(async (tmp) => {
      const config = join(tmp, 'ca.cnf');
      await writeFile(
        config,
        `${REQ_CONFIG}[ext]\nbasicConstraints = critical, CA:TRUE, pathlen:0\nkeyUsage = critical, keyCertSign, cRLSign\n` +
          'subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n',
        { mode: 0o600 },
      );
      // A key left by an interrupted run (ca.key without ca.crt) is used rather than replaced.
      const key = hasKey ? keyPath : keyTemp;
      if (!hasKey) await generateKey(keyTemp);
      await openssl([
        'req', '-x509', '-new', '-config', config, '-extensions', 'ext', '-key', key, '-subj', `/CN=${name}`,
        '-days', String(days), '-sha256', '-set_serial', randomSerial(), '-out', certTemp,
      ]);
    });
    if (!hasKey) await rename(keyTemp, keyPath);
    await rename(certTemp, certPath);
  } finally {
    await rm(keyTemp, { force: true });
    await rm(certTemp, { force: true });
  }
  return { ...(await filesOf(keyPath, certPath)), created: true };
}

/**
 * Sorts hosts into DNS names and IP addresses for subjectAltName. Every host given is kept
 * (duplicates once); `[::1]` is read as ::1. Anything that is neither throws ERR_CONFIG.
 */
export function classifyHosts(hosts: readonly string[]): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const raw of hosts) {
    const host = raw.trim().replace(/^\[(.*)\]$/, '$1');
    if (isIP(host) !== 0) {
      if (!ipAddresses.includes(host)) ipAddresses.push(host);
    } else if (DNS_NAME_PATTERN.test(host)) {
      if (!dnsNames.some((name) => name.toLowerCase() === host.toLowerCase())) dnsNames.push(host);
    } else {
      throw new FlowPilotError('ERR_CONFIG', `host "${raw}": expected a DNS name such as pilot.example.org or an IP address such as 192.0.2.10`);
    }
  }
  return { dnsNames, ipAddresses };
}

export interface ServerCertificateOptions {
  dir: string;
  hosts: string[];
  days?: number;
}

/**
 * `server.key` (0600) and `server.crt` for the broker's mqtts listener and the API's HTTPS,
 * signed by the site CA: subjectAltName with each host as a DNS name or an IP address (clients
 * check the SAN, not the CN: RFC 6125 6.4.4), extendedKeyUsage serverAuth. Issued anew on
 * every call (new key), so hosts can be added by running it again.
 */
export async function createServerCertificate(options: ServerCertificateOptions): Promise<ServerCertificate> {
  const days = options.days ?? DEFAULT_CERTIFICATE_OPTIONS.days;
  checkDays(days, 'server certificate');
  const { dnsNames, ipAddresses } = classifyHosts(options.hosts);
  const first = dnsNames[0] ?? ipAddresses[0];
  if (first === undefined) throw new FlowPilotError('ERR_CONFIG', 'a server certificate needs at least one host name or IP address');
  const dir = resolve(options.dir);
  requireCa(dir);
  await checkOpenssl();
  await makeDir(dir);
  const alt = [...dnsNames.map((name, i) => `DNS.${i + 1} = ${name}`), ...ipAddresses.map((ip, i) => `IP.${i + 1} = ${ip}`)];
  const extensions =
    '[ext]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n' +
    `subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid, issuer\nsubjectAltName = @alt\n[alt]\n${alt.join('\n')}\n`;
  // The CN only names the certificate for people (ub-common-name is 64 characters).
  const commonName = first.length <= 64 ? first : 'flowpilot-server';
  const keyPath = join(dir, SERVER_KEY);
  const certPath = join(dir, SERVER_CERT);
  await issue(dir, keyPath, certPath, `/CN=${commonName}`, extensions, days);
  return { ...(await filesOf(keyPath, certPath)), dnsNames, ipAddresses };
}

export interface ClientCertificateOptions {
  dir: string;
  /** A meter id, or a service login such as `flowpilot-api` (the same character rule). */
  commonName: string;
  days?: number;
}

/** Path of a client's certificate in the site directory (the CN is a safe file name by its rule). */
export function clientCertificatePaths(dir: string, commonName: string): { keyPath: string; certPath: string } {
  return { keyPath: join(resolve(dir), CLIENTS_DIR, `${commonName}.key`), certPath: join(resolve(dir), CLIENTS_DIR, `${commonName}.crt`) };
}

function checkCommonName(commonName: string): void {
  if (!isValidMeterId(commonName)) {
    throw new FlowPilotError(
      'ERR_CONFIG',
      `"${commonName}" is not a meter id or login name: expected a letter or digit, then up to 63 letters, digits, _ . or - (SPEC section 1)`,
    );
  }
}

/**
 * `clients/<cn>.key` (0600) and `clients/<cn>.crt`, CN = the meter id (SPEC section 8: on the
 * TLS listener it logs the meter in without a password), extendedKeyUsage clientAuth.
 */
export async function createClientCertificate(options: ClientCertificateOptions): Promise<ClientCertificate> {
  const days = options.days ?? DEFAULT_CERTIFICATE_OPTIONS.days;
  checkCommonName(options.commonName);
  checkDays(days, 'client certificate');
  const dir = resolve(options.dir);
  requireCa(dir);
  await checkOpenssl();
  await makeDir(dir);
  await makeDir(join(dir, CLIENTS_DIR));
  const { keyPath, certPath } = clientCertificatePaths(dir, options.commonName);
  const extensions =
    '[ext]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\n' +
    'subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid, issuer\n';
  await issue(dir, keyPath, certPath, `/CN=${options.commonName}`, extensions, days);
  return { ...(await filesOf(keyPath, certPath)), commonName: options.commonName };
}

/** Each certificate of a site directory (CA, server, clients) as `openssl x509` reads it. */
export async function listCertificates(dir: string): Promise<CertificateInfo[]> {
  const root = resolve(dir);
  const files = [CA_CERT, SERVER_CERT].filter((file) => existsSync(join(root, file)));
  if (existsSync(join(root, CLIENTS_DIR))) {
    const clients = (await readdir(join(root, CLIENTS_DIR))).filter((file) => file.endsWith('.crt')).sort();
    files.push(...clients.map((file) => `${CLIENTS_DIR}/${file}`));
  }
  if (files.length > 0) await checkOpenssl();
  const infos: CertificateInfo[] = [];
  for (const file of files) {
    const out = await openssl(['x509', '-in', join(root, file), '-noout', '-subject', '-enddate', '-ext', 'subjectAltName']);
    const lines = out.split('\n');
    const subject = lines.find((line) => line.startsWith('subject='))?.slice('subject='.length).trim() ?? '';
    const enddate = lines.find((line) => line.startsWith('notAfter='))?.slice('notAfter='.length).trim() ?? '';
    const sanHeader = lines.findIndex((line) => line.includes('Subject Alternative Name'));
    const san = sanHeader >= 0 ? (lines[sanHeader + 1]?.trim() ?? null) : null;
    infos.push({ file, subject, subjectAltName: san, notAfter: new Date(enddate) });
  }
  return infos;
}

// ---------------------------------------------------------------------------------------------
// `flowpilot certs …`

export interface CertsCommandOptions {
  /** `<dataDir>/tls`. */
  defaultDir: string;
  /** Every meter id of the pilot file, for `meters --all`. */
  pilotMeterIds: string[];
  print(line: string): void;
  /** For "expires in N days" in `list` (STYLE habit 7). */
  now?: () => Date;
}

/** One usage sentence per subcommand; misuse of a subcommand shows its own. */
export const CERTS_USAGE = {
  init: 'usage: flowpilot certs init [--dir D] [--host H ...] [--days N] [--name CA-NAME]',
  meter: 'usage: flowpilot certs meter <id...> [--dir D] [--days N] [--renew]',
  meters: 'usage: flowpilot certs meters --all [--dir D] [--days N] [--renew]',
  list: 'usage: flowpilot certs list [--dir D]',
  all: 'usage: flowpilot certs init [--dir D] [--host H ...] [--days N] | meter <id...> [--dir D] [--days N] [--renew] | meters --all [--dir D] [--days N] [--renew] | list [--dir D]',
} as const;

/** A mistake on the command line (ERR_USAGE: exit code 2), with the subcommand's usage. */
function usage(action: keyof typeof CERTS_USAGE, problem?: string): FlowPilotError {
  return new FlowPilotError('ERR_USAGE', problem ? `${problem}; ${CERTS_USAGE[action]}` : CERTS_USAGE[action]);
}

/** The checks shared with the library functions throw ERR_CONFIG; given as arguments, they are usage errors. */
function checkArgument(action: keyof typeof CERTS_USAGE, check: () => void): void {
  try {
    check();
  } catch (error) {
    if (error instanceof FlowPilotError && error.code === 'ERR_CONFIG') throw usage(action, error.detail);
    throw error;
  }
}

export type ParsedCerts =
  | { action: 'init'; dir: string; hosts: string[]; days: number; name: string }
  | { action: 'meter'; dir: string; ids: string[]; days: number; renew: boolean }
  | { action: 'list'; dir: string };

/** Parses and checks `flowpilot certs …` without touching a file or spawning a process. */
export function parseCertsArgs(args: string[], options: Pick<CertsCommandOptions, 'defaultDir' | 'pilotMeterIds'>): ParsedCerts {
  const [action, ...rest] = args;
  const allowed = {
    init: ['dir', 'host', 'days', 'name'],
    meter: ['dir', 'days', 'renew'],
    meters: ['dir', 'days', 'renew', 'all'],
    list: ['dir'],
  } as const satisfies Record<string, readonly string[]>;
  if (action === undefined || !Object.hasOwn(allowed, action)) {
    throw usage('all', action === undefined ? undefined : `unknown certs command "${action}"`);
  }
  const which = action as keyof typeof allowed;
  const accepted: readonly string[] = allowed[which];
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: {
        dir: { type: 'string' },
        host: { type: 'string', multiple: true },
        days: { type: 'string' },
        name: { type: 'string' },
        renew: { type: 'boolean' },
        all: { type: 'boolean' },
      },
      allowPositionals: action === 'meter',
      strict: true,
    });
  } catch (error) {
    throw usage(which, (error as Error).message.split(/\.\s/)[0]);
  }
  const { values, positionals } = parsed;
  const foreign = Object.keys(values).find((key) => !accepted.includes(key));
  if (foreign !== undefined) throw usage(which, `--${foreign} is not an option of \`certs ${action}\``);
  const dir = resolve(typeof values.dir === 'string' && values.dir !== '' ? values.dir : options.defaultDir);
  const days = (fallback: number): number => {
    if (values.days === undefined) return fallback;
    const n = Number(values.days);
    if (!Number.isInteger(n) || n < 1 || n > MAX_DAYS) throw usage(which, `--days ${String(values.days)}: expected a whole number of days from 1 to ${MAX_DAYS}`);
    return n;
  };
  if (action === 'list') return { action, dir };
  if (action === 'init') {
    const hosts = values.host ?? [...DEFAULT_CERTIFICATE_OPTIONS.hosts];
    checkArgument('init', () => classifyHosts(hosts)); // names the bad host
    const name = typeof values.name === 'string' ? values.name : DEFAULT_CERTIFICATE_OPTIONS.caName;
    if (!CA_NAME_PATTERN.test(name)) throw usage('init', `--name "${name}": expected up to 64 letters, digits, spaces or _ . , ( ) -`);
    return { action, dir, hosts, days: days(DEFAULT_CERTIFICATE_OPTIONS.days), name };
  }
  let ids: string[];
  if (action === 'meter') {
    if (positionals.length === 0) throw usage('meter', 'name at least one meter id');
    ids = positionals;
  } else {
    if (values.all !== true) throw usage('meters', '`meters` makes a certificate for every meter of the pilot and needs --all');
    if (options.pilotMeterIds.length === 0) throw usage('meters', 'the pilot file has no meters');
    ids = options.pilotMeterIds;
  }
  for (const id of ids) checkArgument(which, () => checkCommonName(id));
  return { action: 'meter', dir, ids: [...new Set(ids)], days: days(DEFAULT_CERTIFICATE_OPTIONS.days), renew: values.renew === true };
}

function day(date: Date): string {
  return Number.isNaN(date.getTime()) ? 'unknown' : date.toISOString().slice(0, 10);
}

/** The host a device should connect to: the first non-loopback name of the server certificate. */
async function brokerHost(dir: string): Promise<string> {
  const path = join(dir, SERVER_CERT);
  if (!existsSync(path)) return '<broker host>';
  const san = new X509Certificate(await readFile(path)).subjectAltName ?? '';
  const hosts = san.split(', ').map((entry) => entry.replace(/^(DNS:|IP Address:)/, ''));
  return hosts.find((host) => host !== 'localhost' && !host.startsWith('127.') && host !== '::1') ?? '<broker host>';
}

/** `flowpilot certs init|meter|meters|list` (the lead wires it into main.ts). */
export async function runCertsCommand(args: string[], options: CertsCommandOptions): Promise<void> {
  const command = parseCertsArgs(args, options);
  const { print } = options;
  const dir = command.dir;

  if (command.action === 'init') {
    const ca = await createSiteCa({ dir, name: command.name, days: Math.max(DEFAULT_CERTIFICATE_OPTIONS.caDays, command.days) });
    print(`Site CA: ${ca.certPath} (${ca.created ? 'new' : 'existing, reused'}; SHA-256 fingerprint ${ca.fingerprint256}, valid until ${day(ca.notAfter)})`);
    print(`  Its key ${ca.keyPath} signs every certificate of this site: keep it on this host only and back it up offline.`);
    const server = await createServerCertificate({ dir, hosts: command.hosts, days: command.days });
    print(`Server certificate: ${server.certPath} for ${[...server.dnsNames, ...server.ipAddresses].join(', ')}, valid until ${day(server.notAfter)}`);
    print(`Server key: ${server.keyPath}`);
    print('Set these in the environment of `flowpilot start` (or of `flowpilot broker` and `flowpilot api`):');
    print(`  FLOWPILOT_MQTT_TLS_CERT=${server.certPath}`);
    print(`  FLOWPILOT_MQTT_TLS_KEY=${server.keyPath}`);
    print(`  FLOWPILOT_MQTT_TLS_CA=${ca.certPath}`);
    print(`  FLOWPILOT_HTTP_TLS_CERT=${server.certPath}`);
    print(`  FLOWPILOT_HTTP_TLS_KEY=${server.keyPath}`);
    print('With FLOWPILOT_MQTT_TLS_CA set, the mqtts listener (FLOWPILOT_MQTTS_PORT, 8883) accepts only clients with a certificate from this CA:');
    print('  make one per meter with `flowpilot certs meters --all`, and for the services with `flowpilot certs meter flowpilot-api flowpilot-simulator`;');
    print('  set FLOWPILOT_MQTT_PORT=off to close the plain listener.');
    if (!server.ipAddresses.includes('127.0.0.1')) {
      // With FLOWPILOT_MQTT_PORT=off, FlowPilot's own services default to mqtts://127.0.0.1 (SPEC section 7).
      print('Note: 127.0.0.1 is not among the hosts, so FlowPilot\'s own services cannot verify mqtts://127.0.0.1:8883:');
      print('  add --host 127.0.0.1, or point FLOWPILOT_MQTT_URL at one of the hosts above.');
    }
    print(`Clients verify the server with ${ca.certPath} (the site CA certificate; it is not secret).`);
    return;
  }

  if (command.action === 'meter') {
    const host = await brokerHost(dir);
    for (const id of command.ids) {
      const paths = clientCertificatePaths(dir, id);
      let line: string;
      if (!command.renew && existsSync(paths.certPath) && existsSync(paths.keyPath)) {
        const notAfter = new Date(new X509Certificate(await readFile(paths.certPath)).validTo);
        line = `existing certificate kept, valid until ${day(notAfter)} (--renew issues a new key and certificate)`;
      } else {
        const renewed = existsSync(paths.certPath);
        const { notAfter } = await createClientCertificate({ dir, commonName: id, days: command.days });
        line = renewed
          ? `new key and certificate, valid until ${day(notAfter)} (the previous certificate stays valid until it expires: there is no revocation list)`
          : `new certificate, valid until ${day(notAfter)}`;
      }
      print(`Meter ${id}: ${line}.`);
      print('  Load into the device:');
      print(`    client certificate  ${paths.certPath}`);
      print(`    private key         ${paths.keyPath} (secret: for this device only, never sent by e-mail)`);
      print(`    CA certificate      ${join(dir, CA_CERT)} (to verify the broker)`);
      print(`  It connects to mqtts://${host}:8883 (FLOWPILOT_MQTTS_PORT) with client id and username ${id} and no password.`);
    }
    return;
  }

  const infos = await listCertificates(dir);
  if (infos.length === 0) {
    print(`No certificates in ${dir}: run \`flowpilot certs init\`.`);
    return;
  }
  const now = (options.now ?? (() => new Date()))();
  print(`Certificates in ${dir}:`);
  for (const info of infos) {
    const daysLeft = Math.floor((info.notAfter.getTime() - now.getTime()) / 86_400_000);
    const expiry = daysLeft < 0 ? `EXPIRED ${day(info.notAfter)}` : `expires ${day(info.notAfter)} (in ${daysLeft} days)`;
    print(`  ${info.file}  ${info.subject}${info.subjectAltName ? `  [${info.subjectAltName}]` : ''}  ${expiry}`);
  }
}
