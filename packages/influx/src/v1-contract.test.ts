import { describe, expect, it } from 'vitest';
import { contractWorld, createConsoleRunner } from './v1-contract.ts';

describe('createConsoleRunner (the contract runner of the scripts)', () => {
  it('runs the checks in order after the setup, one line each, and counts pass, skip and fail', async () => {
    const lines: string[] = [];
    const order: string[] = [];
    const { runner, run } = createConsoleRunner((line) => lines.push(line));
    runner.beforeAll(async () => void order.push('setup'));
    runner.afterAll(async () => void order.push('teardown'));
    runner.describe('group', () => {
      runner.it('passes', async (ctx) => {
        order.push('passes');
        ctx.note('version 1.6.7');
      });
      runner.it('skips', async (ctx) => ctx.skip('auth is off'));
      runner.it('fails', async () => {
        throw new Error('expected 1\nto be 2');
      });
    });
    const results = await run();
    expect(order).toEqual(['setup', 'passes', 'teardown']);
    expect(results.map((r) => r.outcome)).toEqual(['pass', 'skip', 'fail']);
    expect(lines).toEqual([
      'group',
      '  PASS  passes (version 1.6.7)',
      '  SKIP  skips (auth is off)',
      '  FAIL  fails (expected 1 / to be 2)',
      '3 checks: 1 passed, 1 skipped, 1 failed',
    ]);
  });

  it('fails every check, unrun, when the data set cannot be written', async () => {
    const lines: string[] = [];
    const { runner, run } = createConsoleRunner((line) => lines.push(line));
    runner.beforeAll(async () => {
      throw new Error('InfluxDB at http://x answered write with HTTP 401');
    });
    runner.it('a', async () => {});
    const results = await run();
    expect(results).toEqual([{ path: [], name: 'a', outcome: 'fail', detail: 'not run: the data set could not be written' }]);
    expect(lines[0]).toBe('FAIL  writing the data set: InfluxDB at http://x answered write with HTTP 401');
  });
});

describe('contractWorld', () => {
  it('places the data set on the two whole UTC days before today, under meter ids of the run', () => {
    const world = contractWorld({ nowMs: () => Date.UTC(2026, 11, 1, 18, 25), runId: 'abc123' });
    expect(world).toEqual({
      runId: 'abc123',
      day0Ms: Date.UTC(2026, 10, 29),
      meterId: 'fpcheck-abc123-a',
      meterIds: ['fpcheck-abc123-a', 'fpcheck-abc123-b', 'fpcheck-abc123-big'],
      fromMs: Date.UTC(2026, 10, 29),
      toMs: Date.UTC(2026, 11, 1),
    });
  });
});
