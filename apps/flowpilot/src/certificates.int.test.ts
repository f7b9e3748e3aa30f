import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkOpenssl,
  clientCertificatePaths,
  createClientCertificate,
  createServerCertificate,
  createSiteCa,
  listCertificates,
  runCertsCommand,
  type SiteCa,
} from './certificates.ts';

// Spawns openssl and opens real TLS sockets, hence the integration project (vitest.config.ts).

const execFileAsync = promisify(execFile);
const METER = 'ALM-PS3-DUT1';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

const mode = (path: string): number => statSync(path).mode & 0o777;

interface Attempt {
  /** What the server answered: the CN it saw, or '' when the handshake was refused. */
  answer: string;
  error?: string;
}

/**
 * A node:tls server that demands a client certificate from the site CA, as the broker's mqtts
 * listener does. It answers each accepted connection with the peer's CN.
 */
async function startServer(dir: string): Promise<{ port: number; refusals: string[]; close(): Promise<void> }> {
  const refusals: string[] = [];
  const server = tls.createServer({
    key: readFileSync(join(dir, 'server.key')),
    cert: readFileSync(join(dir, 'server.crt')),
    ca: readFileSync(join(dir, 'ca.crt')),
    requestCert: true,
    rejectUnauthorized: true,
  });
  server.on('secureConnection', (socket) => {
    socket.end(String(socket.getPeerCertificate().subject.CN));
  });
  server.on('tlsClientError', (error) => refusals.push(error.message));
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    port: (server.address() as AddressInfo).port,
    refusals,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

function attempt(options: tls.ConnectionOptions): Promise<Attempt & { peer?: tls.PeerCertificate }> {
  return new Promise((done) => {
    let answer = '';
    let error: string | undefined;
    let peer: tls.PeerCertificate | undefined;
    const socket = tls.connect({ host: '127.0.0.1', ...options });
    socket.on('secureConnect', () => {
      peer = socket.getPeerCertificate();
    });
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString();
    });
    socket.on('error', (e) => {
      error = e.message;
    });
    socket.on('close', () => done({ answer, ...(error === undefined ? {} : { error }), ...(peer === undefined ? {} : { peer }) }));
  });
}

describe('site certificates (openssl)', () => {
  let root: string;
  let dir: string;
  let otherDir: string;
  let ca: SiteCa;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'flowpilot-certs-test-'));
    dir = join(root, 'data', 'tls');
    otherDir = join(root, 'other-site');
    ca = await createSiteCa({ dir, name: 'PS3 pilot CA', days: 30 });
    await createServerCertificate({ dir, hosts: ['127.0.0.1', 'localhost'], days: 10 });
    await createClientCertificate({ dir, commonName: METER, days: 10 });
    // An unrelated CA that issues a certificate with the same CN: an impersonation attempt.
    await createSiteCa({ dir: otherDir, days: 30 });
    await createClientCertificate({ dir: otherDir, commonName: METER, days: 10 });
  });

  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('finds openssl, and names the package when it is missing', async () => {
    expect(await checkOpenssl()).toMatch(/^OpenSSL \d/);
    await expect(checkOpenssl('/nonexistent/openssl')).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringContaining('openssl is not installed: apt-get install openssl'),
    });
  });

  it('makes a CA, a server and a client certificate that openssl verifies, each for its purpose', async () => {
    const client = clientCertificatePaths(dir, METER);
    const server = await execFileAsync('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), '-purpose', 'sslserver', join(dir, 'server.crt')]);
    expect(server.stdout).toContain(': OK');
    const meter = await execFileAsync('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), '-purpose', 'sslclient', client.certPath]);
    expect(meter.stdout).toContain(': OK');
    // The other site's certificate does not chain to this CA.
    await expect(
      execFileAsync('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), clientCertificatePaths(otherDir, METER).certPath]),
    ).rejects.toThrow();

    const caCert = new X509Certificate(readFileSync(join(dir, 'ca.crt')));
    expect(caCert.ca).toBe(true);
    expect(caCert.subject).toBe('CN=PS3 pilot CA');
    const serverCert = new X509Certificate(readFileSync(join(dir, 'server.crt')));
    expect(serverCert.ca).toBe(false);
    expect(serverCert.keyUsage).toEqual([SERVER_AUTH]);
    expect(serverCert.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
    const clientCert = new X509Certificate(readFileSync(client.certPath));
    expect(clientCert.subject).toBe(`CN=${METER}`);
    expect(clientCert.keyUsage).toEqual([CLIENT_AUTH]);
    expect(clientCert.checkIssued(caCert)).toBe(true);
    // Random serials: no two certificates of the site share one.
    expect(new Set([caCert.serialNumber, serverCert.serialNumber, clientCert.serialNumber]).size).toBe(3);
  });

  it('keeps keys 0600 and the directories 0700, and leaves no temp files', async () => {
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, 'clients'))).toBe(0o700);
    for (const key of ['ca.key', 'server.key', `clients/${METER}.key`]) expect(mode(join(dir, key))).toBe(0o600);
    const { readdir } = await import('node:fs/promises');
    const files = [...(await readdir(dir)), ...(await readdir(join(dir, 'clients')))];
    expect(files.filter((file) => file.endsWith('.tmp'))).toEqual([]);
    expect((await readdir(tmpdir())).filter((file) => file.startsWith('flowpilot-certs-') && !root.endsWith(file))).toEqual([]);
  });

  it('lets a TLS server that requires the site CA accept the meter and see its id as the CN', async () => {
    const server = await startServer(dir);
    try {
      const client = clientCertificatePaths(dir, METER);
      const result = await attempt({
        port: server.port,
        servername: 'localhost',
        ca: readFileSync(join(dir, 'ca.crt')),
        cert: readFileSync(client.certPath),
        key: readFileSync(client.keyPath),
      });
      expect(result.error).toBeUndefined();
      expect(result.answer).toBe(METER);
      expect(server.refusals).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('refuses a client certificate from an unrelated CA, and a client without a certificate', async () => {
    const server = await startServer(dir);
    try {
      const other = clientCertificatePaths(otherDir, METER);
      const impostor = await attempt({
        port: server.port,
        servername: 'localhost',
        ca: readFileSync(join(dir, 'ca.crt')),
        cert: readFileSync(other.certPath),
        key: readFileSync(other.keyPath),
      });
      expect(impostor.answer).toBe('');
      const anonymous = await attempt({ port: server.port, servername: 'localhost', ca: readFileSync(join(dir, 'ca.crt')) });
      expect(anonymous.answer).toBe('');
      expect(server.refusals).toHaveLength(2);
    } finally {
      await server.close();
    }
  });

  it('has a server certificate that is valid for localhost and for 127.0.0.1, and nothing else', async () => {
    const server = await startServer(dir);
    try {
      const client = clientCertificatePaths(dir, METER);
      const credentials = { ca: readFileSync(join(dir, 'ca.crt')), cert: readFileSync(client.certPath), key: readFileSync(client.keyPath) };
      // By IP: node checks the IP SAN against the host it connected to (no SNI for an address).
      const byIp = await attempt({ port: server.port, ...credentials });
      expect(byIp.error).toBeUndefined();
      expect(byIp.answer).toBe(METER);
      const byName = await attempt({ port: server.port, servername: 'localhost', ...credentials });
      expect(byName.answer).toBe(METER);
      const peer = byName.peer;
      if (peer === undefined) throw new Error('no peer certificate');
      expect(tls.checkServerIdentity('localhost', peer)).toBeUndefined();
      expect(tls.checkServerIdentity('127.0.0.1', peer)).toBeUndefined();
      expect(tls.checkServerIdentity('pilot.example.org', peer)).toBeInstanceOf(Error);
      const wrongName = await attempt({ port: server.port, servername: 'pilot.example.org', ...credentials });
      expect(wrongName.error).toMatch(/altnames|Hostname/i);
    } finally {
      await server.close();
    }
  });

  it('keeps the CA when init runs again, and prints the paths and the variables to set', async () => {
    const lines: string[] = [];
    const options = { defaultDir: dir, pilotMeterIds: [METER, 'ALM-PS3-REF1'], print: (line: string) => lines.push(line) };
    await runCertsCommand(['init', '--host', 'pilot.example.org', '--host', '192.0.2.10'], options);
    const again = await createSiteCa({ dir });
    expect(again.created).toBe(false);
    expect(again.fingerprint256).toBe(ca.fingerprint256);
    const output = lines.join('\n');
    expect(output).toContain('existing, reused');
    expect(output).toContain(ca.fingerprint256);
    // Without 127.0.0.1 FlowPilot's own services could not verify mqtts://127.0.0.1: say so.
    expect(output).toContain('127.0.0.1 is not among the hosts');
    expect(lines).toContain(`  FLOWPILOT_MQTT_TLS_CERT=${join(dir, 'server.crt')}`);
    expect(lines).toContain(`  FLOWPILOT_MQTT_TLS_KEY=${join(dir, 'server.key')}`);
    expect(lines).toContain(`  FLOWPILOT_MQTT_TLS_CA=${join(dir, 'ca.crt')}`);
    expect(lines).toContain(`  FLOWPILOT_HTTP_TLS_CERT=${join(dir, 'server.crt')}`);
    expect(lines).toContain(`  FLOWPILOT_HTTP_TLS_KEY=${join(dir, 'server.key')}`);
    // The re-issued server certificate carries the new hosts and still chains to the same CA.
    const serverCert = new X509Certificate(readFileSync(join(dir, 'server.crt')));
    expect(serverCert.subjectAltName).toBe('DNS:pilot.example.org, IP Address:192.0.2.10');
    expect(serverCert.checkIssued(new X509Certificate(readFileSync(join(dir, 'ca.crt'))))).toBe(true);
  });

  it('makes one certificate per meter of the pilot, keeps existing ones, and lists them all', async () => {
    const lines: string[] = [];
    const options = { defaultDir: dir, pilotMeterIds: [METER, 'ALM-PS3-REF1'], print: (line: string) => lines.push(line) };
    const before = readFileSync(clientCertificatePaths(dir, METER).certPath, 'utf8');
    await runCertsCommand(['meters', '--all'], options);
    expect(readFileSync(clientCertificatePaths(dir, METER).certPath, 'utf8')).toBe(before);
    expect(lines).toContain(`Meter ${METER}: existing certificate kept, valid until ${new Date(new X509Certificate(before).validTo).toISOString().slice(0, 10)} (--renew issues a new key and certificate).`);
    expect(lines.some((line) => line.startsWith('Meter ALM-PS3-REF1: new certificate'))).toBe(true);
    expect(lines).toContain(`    private key         ${clientCertificatePaths(dir, 'ALM-PS3-REF1').keyPath} (secret: for this device only, never sent by e-mail)`);
    expect(lines).toContain(`  It connects to mqtts://pilot.example.org:8883 (FLOWPILOT_MQTTS_PORT) with client id and username ALM-PS3-REF1 and no password.`);

    lines.length = 0;
    await runCertsCommand(['meter', 'flowpilot-api', '--days', '5'], options);
    expect(lines[0]).toMatch(/^Meter flowpilot-api: new certificate, valid until \d{4}-\d\d-\d\d\.$/);

    lines.length = 0;
    await runCertsCommand(['meter', METER, '--renew'], options);
    expect(readFileSync(clientCertificatePaths(dir, METER).certPath, 'utf8')).not.toBe(before);
    expect(lines[0]).toContain('new key and certificate');

    const infos = await listCertificates(dir);
    expect(infos.map((info) => info.file)).toEqual(['ca.crt', 'server.crt', `clients/${METER}.crt`, 'clients/ALM-PS3-REF1.crt', 'clients/flowpilot-api.crt']);
    expect(infos[0]).toMatchObject({ subject: 'CN = PS3 pilot CA', subjectAltName: null });
    expect(infos[1]).toMatchObject({ subject: 'CN = pilot.example.org', subjectAltName: 'DNS:pilot.example.org, IP Address:192.0.2.10' });
    expect(infos[2]?.notAfter.getTime()).toBeGreaterThan(Date.now());

    lines.length = 0;
    const apiExpiry = infos[4]?.notAfter.getTime() ?? 0;
    await runCertsCommand(['list'], { ...options, now: () => new Date(apiExpiry + 86_400_000) });
    expect(lines[0]).toBe(`Certificates in ${dir}:`);
    expect(lines).toHaveLength(6);
    expect(lines[5]).toMatch(/^ {2}clients\/flowpilot-api\.crt {2}CN = flowpilot-api {2}EXPIRED \d{4}-\d\d-\d\d$/);
    expect(lines[1]).toMatch(/^ {2}ca\.crt {2}CN = PS3 pilot CA {2}expires \d{4}-\d\d-\d\d \(in \d+ days\)$/);
  });

  it('refuses to issue without a site CA', async () => {
    const empty = join(root, 'empty');
    await expect(createClientCertificate({ dir: empty, commonName: METER })).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringContaining('run `flowpilot certs init` first'),
    });
    await expect(runCertsCommand(['meter', METER], { defaultDir: empty, pilotMeterIds: [], print: () => {} })).rejects.toMatchObject({ code: 'ERR_CONFIG' });
  });
});
