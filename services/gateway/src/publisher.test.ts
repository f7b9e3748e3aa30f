import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { validateStatusPayload } from '@flowpilot/schema';
import { openOutbox, type Outbox } from './outbox.ts';
import { createMeterChannel, DEFAULT_CHANNEL_LIMITS, statusPayload, type MeterChannel } from './publisher.ts';
import { createFakeMqtt, createRecordingLog, type FakeMqtt, type FakeMqttClient } from './test-support.ts';

/** The pump of one meter: what goes in each PUBLISH, in what order, and when the outbox lets it go. */

const cleanups: (() => void)[] = [];
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: Date.parse('2026-11-25T10:00:00.000Z') });
});
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  vi.useRealTimers();
});

function world(limits: Partial<typeof DEFAULT_CHANNEL_LIMITS> = {}): { outbox: Outbox; mqtt: FakeMqtt; channel: MeterChannel; client: () => FakeMqttClient; commit: (n: number) => void } {
  const dir = mkdtempSync(join(tmpdir(), 'flowpilot-publisher-test-'));
  const outbox = openOutbox({ path: join(dir, 'outbox.sqlite'), maxReadings: 10_000 });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => outbox.close());
  const mqtt = createFakeMqtt({ autoAck: false });
  const channel = createMeterChannel({
    meterId: 'M1',
    url: 'mqtt://broker.test:1883',
    link: { clientId: 'gw:gateway:M1', username: 'gw', password: 'pw', reconnectPeriodMs: 1000, connectTimeoutMs: 1000 },
    connect: mqtt.connect,
    outbox,
    clock: { now: () => Date.now() },
    timers: { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) },
    log: createRecordingLog(),
    ...DEFAULT_CHANNEL_LIMITS,
    ...limits,
  });
  channel.start();
  let tsMs = Date.parse('2026-11-24T00:00:00.000Z');
  const commit = (n: number) => {
    for (let i = 0; i < n; i++) {
      tsMs += 60_000;
      outbox.commitReading('M1', tsMs, (seq) => JSON.stringify({ v: 1, meterId: 'M1', seq, ts: new Date(tsMs).toISOString(), flow: 1, total: seq }));
    }
    channel.wake();
  };
  return { outbox, mqtt, channel, client: () => mqtt.client('M1'), commit };
}

const readingPublishes = (client: FakeMqttClient) => client.publishes.filter((p) => p.topic === 'meters/M1/readings');
const seqsOf = (payload: string) => {
  const parsed = JSON.parse(payload) as { seq: number } | { seq: number }[];
  return Array.isArray(parsed) ? parsed.map((r) => r.seq) : parsed.seq;
};

describe('a meter\'s channel', () => {
  it('sends nothing while disconnected, then the backlog oldest first; one reading alone goes as an object', () => {
    const { outbox, client, commit } = world();
    commit(3);
    expect(client().publishes).toHaveLength(0);
    client().accept();
    const [batch] = readingPublishes(client());
    expect(seqsOf(batch!.payload)).toEqual([0, 1, 2]);
    expect(batch!.retain).toBe(false);
    expect(outbox.depth().readings).toBe(3);
    batch!.settle();
    expect(outbox.depth().readings).toBe(0);

    commit(1);
    const single = readingPublishes(client())[1]!;
    expect(single.payload.startsWith('{')).toBe(true);
    expect(seqsOf(single.payload)).toBe(3);
  });

  it('sends at most 1000 readings per PUBLISH, one PUBLISH at a time, each after the PUBACK of the one before', () => {
    const { outbox, client, channel, commit } = world();
    client().accept();
    commit(2001);
    const sizes: number[] = [];
    for (;;) {
      const pending = client().unacked().filter((p) => p.topic === 'meters/M1/readings');
      if (pending.length === 0) break;
      expect(pending).toHaveLength(1);
      const seqs = seqsOf(pending[0]!.payload);
      sizes.push(Array.isArray(seqs) ? seqs.length : 1);
      pending[0]!.settle();
    }
    expect(sizes).toEqual([1000, 1000, 1]);
    const all = readingPublishes(client()).flatMap((p) => {
      const seqs = seqsOf(p.payload);
      return Array.isArray(seqs) ? seqs : [seqs];
    });
    expect(all).toEqual(Array.from({ length: 2001 }, (_, i) => i));
    expect(outbox.depth().readings).toBe(0);
    expect(channel.published).toBe(2001);
    expect(channel.publishes).toBe(3);
  });

  it('keeps a PUBLISH under the byte limit', () => {
    const { client, commit } = world({ maxPayloadBytes: 1000 });
    commit(50);
    client().accept();
    const [batch] = readingPublishes(client());
    expect(Buffer.byteLength(batch!.payload)).toBeLessThanOrEqual(1000);
    expect((seqsOf(batch!.payload) as number[]).length).toBeGreaterThan(5);
  });

  it('keeps the readings of a failed PUBLISH and sends them again, not before the pause', async () => {
    const { outbox, client, commit } = world();
    client().accept();
    commit(1);
    readingPublishes(client())[0]!.settle(new Error('connection closed'));
    expect(outbox.depth().readings).toBe(1);
    await vi.advanceTimersByTimeAsync(DEFAULT_CHANNEL_LIMITS.retryPauseMs - 1);
    expect(readingPublishes(client())).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    const again = readingPublishes(client())[1]!;
    expect(seqsOf(again.payload)).toBe(0);
    again.settle();
    expect(outbox.depth().readings).toBe(0);
  });

  it('announces the meter at each connect, with the fault while there is one; the status passes the broker\'s schema', () => {
    const { channel, client } = world();
    client().accept();
    channel.setFault({ fault: 'sensor_fault', sinceMs: Date.parse('2026-11-25T09:57:00.000Z'), failedPolls: 3 });
    client().drop();
    client().accept();
    const statuses = client().publishes.filter((p) => p.topic === 'meters/M1/status');
    expect(statuses.map((p) => [p.retain, JSON.parse(p.payload)])).toEqual([
      [true, { online: true, ts: '2026-11-25T10:00:00.000Z' }],
      [true, { online: true, ts: '2026-11-25T10:00:00.000Z', fault: 'sensor_fault', faultSince: '2026-11-25T09:57:00.000Z', failedPolls: 3 }],
      [true, { online: true, ts: '2026-11-25T10:00:00.000Z', fault: 'sensor_fault', faultSince: '2026-11-25T09:57:00.000Z', failedPolls: 3 }],
    ]);
    const validated = validateStatusPayload('M1', statuses[1]!.payload, { nowMs: Date.now(), retentionMs: 86_400_000, isRegistered: () => true });
    expect(validated).toEqual({ meterId: 'M1', online: true, tsMs: Date.now() });
  });

  it('says offline at stop and disconnects cleanly; without a PUBACK in time, it drops the connection (the will says it)', async () => {
    const clean = world();
    clean.client().accept();
    clean.client().unacked().forEach((p) => p.settle());
    const stopping = clean.channel.stop(1000);
    const goodbye = clean.client().unacked()[0]!;
    expect(JSON.parse(goodbye.payload)).toEqual({ online: false, ts: '2026-11-25T10:00:00.000Z' });
    goodbye.settle();
    await stopping;
    expect(clean.client().ended).toEqual({ force: false });

    const silent = world();
    silent.client().accept();
    silent.client().unacked().forEach((p) => p.settle());
    const stoppingSilent = silent.channel.stop(1000);
    await vi.advanceTimersByTimeAsync(1000);
    await stoppingSilent;
    expect(silent.client().ended).toEqual({ force: true });
  });

  it('renders a will-free offline status and a status without fault when offline', () => {
    expect(statusPayload(false, 0, { fault: 'sensor_fault', sinceMs: 0, failedPolls: 1 })).toBe('{"online":false,"ts":"1970-01-01T00:00:00.000Z"}');
  });
});
