import { describe, expect, it } from 'vitest';
import { decide, decideOverall, decideWithBins, expandedUncertainty, sampleStd } from './conformity.ts';
import { binOfFlow, classifyFlow, flowRates, maxPermissibleErrorPct, testFlowBins } from './flow-zones.ts';

describe('flow rates, zones, bins and MPE (OIML R49-1)', () => {
  const rates = flowRates(100, 160);

  it('derives Q1, Q2, Q4 from Q3 and R', () => {
    // 100 / 160 = 0.625; 1.6 · 0.625 = 1; 1.25 · 100 = 125.
    expect(rates).toEqual({ q1M3h: 0.625, q2M3h: 1, q3M3h: 100, q4M3h: 125 });
  });

  it('has the class 1 and class 2 limits, warm water above 30 °C, unknown as cold', () => {
    expect([maxPermissibleErrorPct(2, 'lower', 20), maxPermissibleErrorPct(2, 'upper', 30), maxPermissibleErrorPct(2, 'upper', 30.1)]).toEqual([5, 2, 3]);
    expect([maxPermissibleErrorPct(1, 'lower', 50), maxPermissibleErrorPct(1, 'upper', null), maxPermissibleErrorPct(1, 'upper', 31)]).toEqual([3, 1, 2]);
  });

  it('puts Q1 and Q2 in their zones inclusively, Q4 in the upper zone, and bins at 0.35 and 0.7 of Q2 + Q3', () => {
    expect([0.6, 0.625, 0.999, 1, 125, 125.01, Number.NaN].map((q) => classifyFlow(q, rates))).toEqual([-1, 0, 0, 1, 1, 2, -1]);
    // 0.35 · 101 = 35.35, 0.7 · 101 = 70.7; Q3 = 100 is upper-3, just above is upper-4.
    expect([0.625, 1, 35.349, 35.35, 70.7, 100, 100.001, 125, 125.1, 0.5].map((q) => binOfFlow(q, rates))).toEqual([0, 1, 1, 2, 3, 3, 4, 4, -1, -1]);
    const near = (x: number) => expect.closeTo(x, 12);
    expect(testFlowBins(rates).map((b) => [b.bin, b.qFromM3h, b.qToM3h])).toEqual([
      ['lower', 0.625, 1],
      ['upper-1', 1, near(35.35)],
      ['upper-2', near(35.35), near(70.7)],
      ['upper-3', near(70.7), 100],
      ['upper-4', 100, 125],
    ]);
  });
});

describe('decision rule (OIML G 19, SPEC 4)', () => {
  it('is insufficient below 30 intervals or without an error, whatever the error', () => {
    expect(decide(0.1, 0, 2, 29, 30)).toEqual({ verdict: 'insufficient', rule: 'intervals' });
    expect(decide(null, 0, 2, 300, 30)).toEqual({ verdict: 'insufficient', rule: 'intervals' });
  });

  it('uses simple acceptance while U ≤ MPE/3, the limit itself included', () => {
    // MPE 2: U 0.5 ≤ 0.667; U exactly 2/3 is still simple.
    expect(decide(1.9, 0.5, 2, 30, 30)).toEqual({ verdict: 'pass', rule: 'simple acceptance' });
    expect(decide(-2, 0.5, 2, 30, 30)).toEqual({ verdict: 'pass', rule: 'simple acceptance' });
    expect(decide(2.1, 0.5, 2, 30, 30)).toEqual({ verdict: 'fail', rule: 'simple acceptance' });
    expect(decide(2.1, 2 / 3, 2, 30, 30).rule).toBe('simple acceptance');
  });

  it('uses guarded acceptance when U > MPE/3: pass inside MPE − U, fail beyond MPE + U, inconclusive between', () => {
    // MPE 2, U 1: pass when |E| ≤ 1, fail when |E| > 3.
    expect(decide(0.9, 1, 2, 30, 30)).toEqual({ verdict: 'pass', rule: 'guarded acceptance' });
    expect(decide(1, 1, 2, 30, 30).verdict).toBe('pass');
    expect(decide(1.5, 1, 2, 30, 30).verdict).toBe('inconclusive');
    expect(decide(-3, 1, 2, 30, 30).verdict).toBe('inconclusive');
    expect(decide(3.1, 1, 2, 30, 30)).toEqual({ verdict: 'fail', rule: 'guarded acceptance' });
  });

  it('lets a failing bin fail its zone and an inconclusive bin hold back a pass; insufficient bins do not count', () => {
    const pass = { verdict: 'pass', rule: 'simple acceptance' } as const;
    expect(decideWithBins(pass, [{ bin: 'upper-1', verdict: 'insufficient' }, { bin: 'upper-3', verdict: 'pass' }])).toEqual(pass);
    expect(decideWithBins(pass, [{ bin: 'upper-2', verdict: 'inconclusive' }, { bin: 'upper-3', verdict: 'fail' }])).toEqual({ verdict: 'fail', rule: 'bin upper-3' });
    expect(decideWithBins(pass, [{ bin: 'upper-2', verdict: 'inconclusive' }])).toEqual({ verdict: 'inconclusive', rule: 'bin upper-2' });
    const failing = { verdict: 'fail', rule: 'guarded acceptance' } as const;
    expect(decideWithBins(failing, [{ bin: 'upper-2', verdict: 'fail' }])).toEqual(failing);
    const few = { verdict: 'insufficient', rule: 'intervals' } as const;
    expect(decideWithBins(few, [{ bin: 'lower', verdict: 'fail' }])).toEqual(few);
  });

  it('passes overall only when both zones pass', () => {
    expect(decideOverall(['pass', 'pass'])).toEqual({ verdict: 'pass', rule: 'zones' });
    expect(decideOverall(['pass', 'insufficient']).verdict).toBe('insufficient');
    expect(decideOverall(['inconclusive', 'insufficient']).verdict).toBe('insufficient');
    expect(decideOverall(['inconclusive', 'pass']).verdict).toBe('inconclusive');
    expect(decideOverall(['insufficient', 'fail']).verdict).toBe('fail');
  });
});

describe('expanded uncertainty (SPEC 4)', () => {
  it('combines reference, resolution and repeatability by hand', () => {
    // u_ref = 0.3/2 = 0.15; u_res = 100·√(2·(0.01² + 0.01²)/6)/100 = √(0.0004/6) = 0.0081650;
    // daily errors 1, 2, 3 → std 1 → u_rep = 1/√3 = 0.5773503.
    // U = 2·√(0.0225 + 0.0000666667 + 0.3333333) = 2·√0.3559 = 1.193147.
    const budget = expandedUncertainty({ referenceExpandedPct: 0.3, resolutionRefM3: 0.01, resolutionTestM3: 0.01, stretches: 2, volumeRefM3: 100, dailyErrorsPct: [1, 2, 3] });
    expect(budget.referencePct).toBe(0.15);
    expect(budget.resolutionPct).toBeCloseTo(0.008165, 6);
    expect(budget.repeatabilityPct).toBeCloseTo(0.5773503, 7);
    expect(budget.expandedPct).toBeCloseTo(1.193147, 6);
    expect(budget).toMatchObject({ days: 3, stretches: 2, notes: [] });
    expect(budget.dailyErrorStdPct).toBeCloseTo(1, 12);
  });

  it('counts what is not known as 0 and says so: calibration, resolution, fewer than 3 days', () => {
    const budget = expandedUncertainty({ referenceExpandedPct: null, resolutionRefM3: null, resolutionTestM3: 0.001, stretches: 1, volumeRefM3: 10, dailyErrorsPct: [0.5, 0.7] });
    expect(budget.referencePct).toBe(0);
    expect(budget.repeatabilityPct).toBe(0);
    // Only the test register: 100·√(1e-6/6)/10 = 0.0040825.
    expect(budget.resolutionPct).toBeCloseTo(0.0040825, 7);
    expect(budget.dailyErrorStdPct).toBeCloseTo(Math.SQRT2 * 0.1, 12);
    expect(budget.notes).toEqual([
      "reference meter's calibration uncertainty not given in the pilot file: counted as 0",
      'reference register resolution unknown: counted as 0',
      'repeatability needs 3 days of data, 2 days here: counted as 0',
    ]);
    expect(sampleStd([4])).toBeNull();
  });
});
