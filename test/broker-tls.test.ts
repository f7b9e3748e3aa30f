import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, connectAsync, type IClientOptions } from 'mqtt';
import { createClientCertificate, createServerCertificate, createSiteCa } from '../apps/flowpilot/src/certificates.ts';
import { createTestInflux } from './helpers/influx.ts';
import { makePilot, startTestPipeline, wireReading, type TestPipeline } from './helpers/pipeline.ts';
import { eventually } from './helpers/wait.ts';

/**
 * The mqtts listener of SPEC section 8 over real TLS: a site CA made by `flowpilot certs`,
 * meters logging in by the CN of their client certificate, no password crossing the network.
 */
let dir: string;
let otherDir: string;
const pem = (path: string) => readFileSync(path);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowpilot-tls-'));
  otherDir = mkdtempSync(join(tmpdir(), 'flowpilot-tls-other-'));
  await createSiteCa({ dir });
  await createServerCertificate({ dir, hosts: ['localhost', '127.0.0.1'] });
  await createClientCertificate({ dir, commonName: 'M1' });
  await createClientCertificate({ dir, commonName: 'STRANGER' });
  await createClientCertificate({ dir, commonName: 'gw-ps3' });
  await createSiteCa({ dir: otherDir });
  await createClientCertificate({ dir: otherDir, commonName: 'M1' });
}, 60_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(otherDir, { recursive: true, force: true });
});

async function tlsWorld(): Promise<{ pipeline: TestPipeline; url: string; influx: Awaited<ReturnType<typeof createTestInflux>> }> {
  const influx = await createTestInflux();
  const pipeline = await startTestPipeline({ pilot: makePilot(['M1', 'M2']), influx });
  const address = await pipeline.broker.listenTls(0, '127.0.0.1', { key: pem(join(dir, 'server.key')), cert: pem(join(dir, 'server.crt')), ca: pem(join(dir, 'ca.crt')) });
  return { pipeline, influx, url: `mqtts://127.0.0.1:${address.port}` };
}

function tlsOptions(base: string, cn: string): IClientOptions {
  return {
    ca: pem(join(dir, 'ca.crt')),
    cert: pem(join(base, 'clients', `${cn}.crt`)),
    key: pem(join(base, 'clients', `${cn}.key`)),
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
  };
}

/** 'connected', or why not: a refused TLS handshake closes the socket without an MQTT error. */
function connectOutcome(url: string, options: IClientOptions): Promise<string> {
  return new Promise((resolve) => {
    const client = connect(url, options);
    const done = (outcome: string) => {
      client.end(true);
      resolve(outcome);
    };
    client.once('connect', () => done('connected'));
    client.once('error', (error) => done(`refused: ${error.message}`));
    client.once('close', () => done('refused: closed'));
  });
}

describe('mqtts with client certificates', () => {
  it('logs a meter in by its certificate\'s CN, without a password, and stores its reading', async () => {
    const { pipeline, influx, url } = await tlsWorld();
    try {
      const client = await connectAsync(url, { ...tlsOptions(dir, 'M1'), clientId: 'M1', clean: false });
      await client.publishAsync('meters/M1/readings', JSON.stringify(wireReading('M1', 1, Date.now() - 60_000)), { qos: 1 });
      await eventually(async () => (await influx.query('SELECT seq FROM reading'))[0]?.values ?? [], (v) => v.length === 1, 15_000, (v) => `${v.length} points`);
      // The certificate is M1's: publishing as M2 ends the connection without a PUBACK.
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      void client.publishAsync('meters/M2/readings', JSON.stringify(wireReading('M2', 1, Date.now())), { qos: 1 }).catch(() => {});
      await closed;
      await client.endAsync(true);
    } finally {
      await pipeline.close();
    }
  });

  it('refuses a certificate from another CA, a client without a certificate, and a CN that is no meter', async () => {
    const { pipeline, url } = await tlsWorld();
    try {
      expect(await connectOutcome(url, { ...tlsOptions(otherDir, 'M1'), clientId: 'M1' })).toMatch(/^refused/);
      await pipeline.credentials.add('M1', 'meter', 'pw');
      expect(await connectOutcome(url, { ca: pem(join(dir, 'ca.crt')), clientId: 'M1', username: 'M1', password: 'pw', protocolVersion: 4, reconnectPeriod: 0 })).toMatch(/^refused/);
      expect(await connectOutcome(url, { ...tlsOptions(dir, 'STRANGER'), clientId: 'STRANGER' })).toMatch(/Not authorized/);
      // A certificate for M1 with another meter's username is a login as neither.
      expect(await connectOutcome(url, { ...tlsOptions(dir, 'M1'), clientId: 'M2', username: 'M2', password: 'x' })).toMatch(/^refused/);
      expect(await connectOutcome(url, { ...tlsOptions(dir, 'M1'), clientId: 'M1' })).toBe('connected');
    } finally {
      await pipeline.close();
    }
  });

  it('logs a gateway in by its certificate\'s CN once the credentials store knows it, limited to its meters', async () => {
    const { pipeline, influx, url } = await tlsWorld();
    try {
      // A CN that is neither a meter nor a login is refused, as any stranger's.
      expect(await connectOutcome(url, { ...tlsOptions(dir, 'gw-ps3'), clientId: 'gw-ps3:M1' })).toMatch(/Not authorized/);
      await pipeline.credentials.add('gw-ps3', 'gateway', undefined, ['M1']);
      // Its client ids are its login, or its login and a suffix; a meter's id is not one of them.
      expect(await connectOutcome(url, { ...tlsOptions(dir, 'gw-ps3'), clientId: 'M1' })).toMatch(/^refused/);
      // Its last will only on the status of one of its meters.
      expect(await connectOutcome(url, { ...tlsOptions(dir, 'gw-ps3'), clientId: 'gw-ps3:M2', will: { topic: 'meters/M2/status', payload: Buffer.from('{"online":false}'), qos: 1, retain: true } })).toMatch(/^refused/);
      const client = await connectAsync(url, {
        ...tlsOptions(dir, 'gw-ps3'),
        clientId: 'gw-ps3:M1',
        will: { topic: 'meters/M1/status', payload: Buffer.from(JSON.stringify({ online: false, ts: Date.now() })), qos: 1, retain: true },
      });
      await client.publishAsync('meters/M1/readings', JSON.stringify(wireReading('M1', 1, Date.now() - 60_000)), { qos: 1 });
      await eventually(async () => (await influx.query('SELECT seq FROM reading'))[0]?.values ?? [], (v) => v.length === 1, 15_000, (v) => `${v.length} points`);
      // It subscribes to nothing: the SUBACK grants nothing and the connection stays up.
      await expect(client.subscribeAsync('meters/+/readings', { qos: 1 })).rejects.toThrow('Subscribe error');
      expect(client.connected).toBe(true);
      // M2 is not its meter: publishing for it ends the connection without a PUBACK.
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      void client.publishAsync('meters/M2/readings', JSON.stringify(wireReading('M2', 1, Date.now())), { qos: 1 }).catch(() => {});
      await closed;
      await client.endAsync(true);
    } finally {
      await pipeline.close();
    }
  });
});
