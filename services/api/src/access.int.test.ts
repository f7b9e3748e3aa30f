import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/wait.ts';
import { openApiTokenStore } from './api-tokens.ts';
import { createApi } from './app.ts';
import type { ApiOptions } from './app.ts';
import { createMemoryLiveFeed } from './live-feed.ts';
import { testPilot, idleInflux } from './test-pilot.ts';

// The limits that need real sockets (SPEC section 8): the cap on live streams, the request
// timeout against a client that trickles its request, and HTTPS with a Secure sign-in cookie.

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const influx = idleInflux;

async function listen(options: Partial<ApiOptions> = {}): Promise<{ app: FastifyInstance; baseUrl: string }> {
  const app = await createApi({ pilot: testPilot(), influx, liveFeed: createMemoryLiveFeed(), ...options });
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  cleanups.push(() => app.close());
  return { app, baseUrl };
}

function openStream(url: string): Promise<{ response: IncomingMessage; body: () => Promise<string>; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { accept: 'text/event-stream' } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      const ended = new Promise<string>((done) => response.on('end', () => done(text)));
      resolve({ response, body: () => ended, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('limits over real sockets', () => {
  it('serves maxLiveConnections live streams and answers the next 503 ERR_LIVE_FULL, until one closes', async () => {
    const feed = createMemoryLiveFeed();
    const { baseUrl } = await listen({ liveFeed: feed, maxLiveConnections: 2 });
    const first = await openStream(`${baseUrl}/api/v1/live`);
    const second = await openStream(`${baseUrl}/api/v1/live`);
    cleanups.push(() => first.close(), () => second.close());
    expect([first.response.statusCode, second.response.statusCode]).toEqual([200, 200]);

    const third = await openStream(`${baseUrl}/api/v1/live`);
    expect(third.response.statusCode).toBe(503);
    expect(third.response.headers['content-type']).toContain('application/json');
    expect(JSON.parse(await third.body())).toMatchObject({ error: { code: 'ERR_LIVE_FULL', message: expect.stringContaining('2 live streams') } });

    first.close();
    await eventually(() => feed.listenerCount() === 1, Boolean, 5000, 'the closed stream to be dropped');
    const fourth = await openStream(`${baseUrl}/api/v1/live`);
    cleanups.push(() => fourth.close());
    expect(fourth.response.statusCode).toBe(200);
  });

  it('ends an open live stream at its next heartbeat once its token is revoked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowpilot-live-revoke-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const tokens = openApiTokenStore(join(dir, 'api-tokens.json'));
    const token = tokens.add('wall-screen', 'viewer');
    tokens.add('other', 'admin');
    const { baseUrl } = await listen({ tokens, sseHeartbeatMs: 100 });
    const stream = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest(`${baseUrl}/api/v1/live`, { headers: { authorization: `Bearer ${token}` } }, resolve);
      req.on('error', reject);
      req.end();
      cleanups.push(() => req.destroy());
    });
    expect(stream.statusCode).toBe(200);
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (text += chunk));
    const ended = new Promise<void>((resolve) => stream.on('end', resolve));
    await eventually(() => text.includes(': heartbeat'), Boolean, 5000, 'a heartbeat');
    tokens.revoke('wall-screen');
    await ended;
  });

  it('cuts off a client that trickles its request beyond requestTimeoutMs', async () => {
    const { baseUrl } = await listen({ requestTimeoutMs: 600 });
    const { port } = new URL(baseUrl);
    const startedAt = Date.now();
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n'));
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (text += chunk));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(Date.now() - startedAt).toBeLessThan(5000);
  });
});

describe('HTTPS', () => {
  it('serves over TLS with HSTS and upgrade-insecure-requests, and a Secure sign-in cookie', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowpilot-https-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    const tokens = openApiTokenStore(join(dir, 'api-tokens.json'));
    const token = tokens.add('tls-user', 'viewer');
    const { baseUrl } = await listen({ tokens, https: { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) } });
    expect(baseUrl).toMatch(/^https:\/\//);

    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpsRequest(`${baseUrl}/api/v1/session`, { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } }, resolve);
      req.on('error', reject);
      req.end(JSON.stringify({ token }));
    });
    response.resume();
    expect(response.statusCode).toBe(200);
    const cookie = String(response.headers['set-cookie']);
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Strict/);
    expect(response.headers['strict-transport-security']).toMatch(/max-age=\d+/);
    expect(String(response.headers['content-security-policy'])).toContain('upgrade-insecure-requests');
  });
});
