import { describe, expect, it } from 'vitest';
import type { InfluxClient } from './client.ts';
import { InfluxError } from './errors.ts';
import { writeIsolating } from './write-isolating.ts';

/**
 * A stand-in for InfluxDB 1.x: refuses a request holding any line containing "BAD" (400) or more
 * than `maxLines` lines (413); otherwise stores the lines. A request is all or nothing here, which
 * is the worst case for the bisection (1.x would keep the good lines of a partial write).
 */
function fakeClient(options: { maxLines?: number; down?: boolean } = {}): { client: InfluxClient; stored: string[]; requests: number } {
  const state = { stored: [] as string[], requests: 0 };
  const client: InfluxClient = {
    config: { url: 'http://fake', database: 'db' },
    ping: async () => ({ version: 'fake' }),
    ensureDatabase: async () => {},
    query: async () => [],
    write: async (lines) => {
      state.requests++;
      if (options.down) throw new InfluxError('unavailable', 'down');
      if (lines.length > (options.maxLines ?? Infinity)) throw new InfluxError('too-large', 'HTTP 413: Request Entity Too Large', { status: 413 });
      const bad = lines.find((line) => line.includes('BAD'));
      if (bad !== undefined) throw new InfluxError('bad-lines', `HTTP 400: unable to parse '${bad}'`, { status: 400 });
      state.stored.push(...lines);
    },
  };
  return {
    client,
    get stored() {
      return state.stored;
    },
    get requests() {
      return state.requests;
    },
  };
}

const lines = (count: number): string[] => Array.from({ length: count }, (_, i) => `m f=${i} ${i}`);

describe('writeIsolating', () => {
  it('writes a clean batch in one request', async () => {
    const fake = fakeClient();
    expect(await writeIsolating(fake.client, lines(8))).toEqual({ written: 8, rejected: [] });
    expect(fake.requests).toBe(1);
  });

  it('writes nothing and asks nothing for an empty batch', async () => {
    const fake = fakeClient();
    expect(await writeIsolating(fake.client, [])).toEqual({ written: 0, rejected: [] });
    expect(fake.requests).toBe(0);
  });

  it('bisects down to the bad lines, keeps every good one, in order', async () => {
    const fake = fakeClient();
    const batch = lines(8);
    batch[2] = 'BAD two';
    batch[7] = 'BAD seven';
    const result = await writeIsolating(fake.client, batch);
    expect(result.written).toBe(6);
    expect(result.rejected).toEqual([
      { line: 'BAD two', reason: "HTTP 400: unable to parse 'BAD two'" },
      { line: 'BAD seven', reason: "HTTP 400: unable to parse 'BAD seven'" },
    ]);
    expect(fake.stored).toEqual(['m f=0 0', 'm f=1 1', 'm f=3 3', 'm f=4 4', 'm f=5 5', 'm f=6 6']);
    // [0..7] → [0..3] → [0,1] ok, [2,3] → [2] bad, [3] ok; [4..7] → [4,5] ok, [6,7] → [6] ok, [7] bad
    expect(fake.requests).toBe(11);
  });

  it('halves a batch that is too large until each part fits', async () => {
    const fake = fakeClient({ maxLines: 3 });
    expect(await writeIsolating(fake.client, lines(10))).toEqual({ written: 10, rejected: [] });
    expect(fake.stored).toEqual(lines(10));
    // 10 → 5 → (3 ok, 2 ok); 5 → (3 ok, 2 ok)
    expect(fake.requests).toBe(7);
  });

  it('rejects a single line that is too large on its own', async () => {
    const fake = fakeClient({ maxLines: 0 });
    const result = await writeIsolating(fake.client, ['m f=1 1']);
    expect(result).toEqual({ written: 0, rejected: [{ line: 'm f=1 1', reason: 'HTTP 413: Request Entity Too Large' }] });
  });

  it('throws unavailable to the caller, which retries with backoff', async () => {
    const fake = fakeClient({ down: true });
    await expect(writeIsolating(fake.client, lines(4))).rejects.toMatchObject({ kind: 'unavailable' });
    expect(fake.requests).toBe(1);
  });

  it.each(['auth', 'database'] as const)('throws %s without bisecting', async (kind) => {
    let requests = 0;
    const client = {
      ...fakeClient().client,
      write: async () => {
        requests++;
        throw new InfluxError(kind, kind);
      },
    };
    await expect(writeIsolating(client, lines(4))).rejects.toMatchObject({ kind });
    expect(requests).toBe(1);
  });
});
