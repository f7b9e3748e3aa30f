import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FlowPilotError } from '@flowpilot/schema';
import { openOutbox, type Outbox } from './outbox.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function outboxPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowpilot-outbox-test-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'data', 'outbox.sqlite');
}

function open(path: string, maxReadings = 100): Outbox {
  const outbox = openOutbox({ path, maxReadings });
  cleanups.push(() => outbox.close());
  return outbox;
}

const payload = (meterId: string) => (seq: number) => JSON.stringify({ meterId, seq });

describe('the outbox', () => {
  it('numbers each meter\'s readings and skips from 0, and keeps the numbers across a reopen', () => {
    const path = outboxPath();
    const first = open(path);
    expect(first.commitReading('A', 1000, payload('A'))).toMatchObject({ meterId: 'A', seq: 0, tsMs: 1000, payload: '{"meterId":"A","seq":0}' });
    expect(first.commitSkip('A')).toBe(1);
    expect(first.commitReading('A', 3000, payload('A')).seq).toBe(2);
    expect(first.commitReading('B', 3000, payload('B')).seq).toBe(0);
    first.close();

    const second = open(path);
    expect(second.nextSeq('A')).toBe(3);
    expect(second.nextSeq('B')).toBe(1);
    expect(second.nextSeq('C')).toBe(0);
    expect(second.depth()).toEqual({ readings: 3, oldestTsMs: 1000 });
    expect(second.pending('A', 10).map((row) => row.seq)).toEqual([0, 2]);
    expect(second.meters()).toEqual({ A: 2, B: 1 });
  });

  it('hands out one meter\'s readings oldest first, bounded by count and bytes, and deletes only the range acknowledged', () => {
    const outbox = open(outboxPath());
    for (let i = 0; i < 5; i++) {
      outbox.commitReading('A', i, payload('A'));
      outbox.commitReading('B', i, payload('B'));
    }
    expect(outbox.pending('A', 3).map((row) => row.seq)).toEqual([0, 1, 2]);
    // Each payload is 23 bytes, plus one for its separator in an array.
    expect(outbox.pending('A', 10, 48).map((row) => row.seq)).toEqual([0, 1]);
    expect(outbox.pending('A', 10, 1).map((row) => row.seq)).toEqual([0]);

    const batch = outbox.pending('A', 3);
    expect(outbox.remove('A', batch[0]!.id, batch[2]!.id)).toBe(3);
    expect(outbox.pending('A', 10).map((row) => row.seq)).toEqual([3, 4]);
    expect(outbox.pending('B', 10).map((row) => row.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(outbox.depth().readings).toBe(7);
  });

  it('refuses a reading when full and never overwrites one; a skip still advances the seq', () => {
    const outbox = open(outboxPath(), 2);
    outbox.commitReading('A', 1, payload('A'));
    outbox.commitReading('A', 2, payload('A'));
    expect(outbox.isFull()).toBe(true);
    expect(() => outbox.commitReading('A', 3, payload('A'))).toThrow(/full/);
    expect(outbox.commitSkip('A')).toBe(2);
    expect(outbox.pending('A', 10).map((row) => [row.seq, row.tsMs])).toEqual([
      [0, 1],
      [1, 2],
    ]);
    const [first] = outbox.pending('A', 1);
    outbox.remove('A', first!.id, first!.id);
    expect(outbox.isFull()).toBe(false);
    expect(outbox.commitReading('A', 4, payload('A')).seq).toBe(3);
  });

  it('belongs to one process: a second gateway on the same file is refused, naming it', () => {
    const path = outboxPath();
    open(path);
    let refusal: unknown;
    try {
      openOutbox({ path, maxReadings: 10, busyTimeoutMs: 50 });
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(FlowPilotError);
    expect((refusal as FlowPilotError).message).toContain(`the outbox ${path} is in use by another process`);
  });

  it('is readable by its owner only', () => {
    const path = outboxPath();
    open(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700);
  });
});
