import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FlowPilotError } from './errors.ts';
import { createMeterRegistry, DEFAULT_ALERT_THRESHOLDS, isSimulated, parsePilotConfig, simulatedMeters } from './pilot.ts';

const example = readFileSync(new URL('../../../examples/pilot.yaml', import.meta.url), 'utf8');

function problems(text: string): string {
  try {
    parsePilotConfig(text, 'pilot.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(FlowPilotError);
    expect((error as FlowPilotError).code).toBe('ERR_PILOT_CONFIG');
    return (error as Error).message;
  }
  throw new Error('expected the pilot file to be rejected');
}

describe('parsePilotConfig', () => {
  it('accepts the example pilot: 2+ sites, 3 reference/test pairs, a monitor', () => {
    const pilot = parsePilotConfig(example);
    expect(pilot.pilot.timezone).toBe('Asia/Almaty');
    expect(new Set(pilot.meters.map((m) => m.site)).size).toBeGreaterThanOrEqual(2);
    expect(pilot.meters.filter((m) => m.role === 'test').map((m) => m.reference)).toHaveLength(3);
    expect(pilot.meters.some((m) => m.role === 'monitor')).toBe(true);
    expect(Object.isFrozen(pilot.meters[0])).toBe(true);
  });

  it('names all 3 mistakes of a bad file in one error', () => {
    const bad = example
      .replace('timezone: Asia/Almaty', 'timezone: Asia/Atlantis')
      .replace('reference: ALM-PS7-REF', 'reference: ALM-PS9-REF')
      .replace(/intervalSec: 60\n {4}simulate: true\n {2}- id: ALM-DMA12-MON/, 'intervalSec: -5\n    simulate: true\n  - id: ALM-DMA12-MON');
    const message = problems(bad);
    expect(message).toMatch(/has 3 problems/);
    expect(message).toContain('pilot.timezone: must be an IANA time zone');
    expect(message).toContain('meters[5].reference: no meter "ALM-PS9-REF" in this file');
    expect(message).toContain('meters[5].intervalSec: must be greater than 0');
  });

  it('requires the accuracy fields of a test meter and a reference of role reference', () => {
    const message = problems(`
pilot: { id: p, name: P, timezone: UTC }
meters:
  - { id: A, site: S, role: monitor, intervalSec: 60 }
  - { id: B, site: S, role: test, reference: A, intervalSec: 60 }
  - { id: B, site: S, role: reference, intervalSec: 60 }
`);
    expect(message).toContain('meters[1].reference: "A" has role monitor, expected reference');
    expect(message).toContain('meters[1].q3: required for a test meter');
    expect(message).toContain('meters[2].id: "B" is listed twice');
  });

  it('says when the file is not YAML', () => {
    expect(problems('pilot: [unclosed')).toMatch(/not valid YAML or JSON/);
  });

  it('simulates a meter only when it says simulate: true (SPEC section 3); the example pilot does for all', () => {
    expect(simulatedMeters(parsePilotConfig(example))).toHaveLength(7);
    const pilot = parsePilotConfig(`
pilot: { id: p, name: P, timezone: UTC }
meters:
  - { id: REAL, site: S, role: monitor, intervalSec: 60 }
  - { id: OFF, site: S, role: monitor, intervalSec: 60, simulate: false }
  - { id: SIM, site: S, role: monitor, intervalSec: 60, simulate: true }
`);
    expect(pilot.meters.map(isSimulated)).toEqual([false, false, true]);
    expect(simulatedMeters(pilot).map((m) => m.id)).toEqual(['SIM']);
    expect(problems(`
pilot: { id: p, name: P, timezone: UTC }
meters:
  - { id: A, site: S, role: monitor, intervalSec: 60, simulate: "yes" }
`)).toContain('meters[0].simulate: must be true or false');
  });

  it('indexes meters by id', () => {
    const registry = createMeterRegistry(parsePilotConfig(example));
    expect(registry.has('ALM-PS3-DUT1')).toBe(true);
    expect(registry.has('nope')).toBe(false);
    expect(registry.get('ALM-PS7-REF')?.site).toBe('PS7');
  });
});

describe('alerts, notify and language (SPEC section 9)', () => {
  const head = `
pilot: { id: p, name: P, timezone: UTC }
meters:
  - { id: A, site: S, role: monitor, intervalSec: 60, leakM3h: 1.5 }
  - { id: B, site: S, role: monitor, intervalSec: 60 }
`;

  it('fills every threshold of a file without an alerts: section from the defaults, notifies nobody and speaks English', () => {
    const pilot = parsePilotConfig(head);
    expect(pilot.alerts).toEqual({ ...DEFAULT_ALERT_THRESHOLDS, meters: {} });
    expect(DEFAULT_ALERT_THRESHOLDS).toEqual({ staleIntervals: 3, lowBatteryPct: 20, totalizerPct: 2, rejectedPerHour: 10, storeLagSec: 300, flapMinutes: 10 });
    expect(pilot.notify).toEqual({});
    expect(pilot.pilot.language).toBe('en');
    expect(pilot.meters[0]?.leakM3h).toBe(1.5);
    expect(Object.isFrozen(pilot.alerts.meters)).toBe(true);
  });

  it('takes thresholds, per-meter overrides, webhooks, e-mail and a language', () => {
    const pilot = parsePilotConfig(`${head.replace('timezone: UTC', 'timezone: UTC, language: kk')}
alerts:
  staleIntervals: 5
  flapMinutes: 0
  meters:
    B: { lowBatteryPct: 30, leakM3h: 0.4 }
notify:
  webhooks: [{ url: "https://hooks.example.org/flowpilot", secret: s3cret }, { url: "http://10.0.0.5:9000/alerts" }]
  email:
    smtp: { host: smtp.example.org, port: 587, user: flowpilot, passwordFile: /run/secrets/smtp }
    from: flowpilot@example.org
    to: [ops@example.org, "night.shift@example.org"]
`);
    expect(pilot.pilot.language).toBe('kk');
    expect(pilot.alerts).toMatchObject({ staleIntervals: 5, flapMinutes: 0, lowBatteryPct: 20, meters: { B: { lowBatteryPct: 30, leakM3h: 0.4 } } });
    expect(pilot.notify.webhooks).toEqual([{ url: 'https://hooks.example.org/flowpilot', secret: 's3cret' }, { url: 'http://10.0.0.5:9000/alerts' }]);
    expect(pilot.notify.email?.to).toEqual(['ops@example.org', 'night.shift@example.org']);
    expect(pilot.notify.email?.smtp.passwordFile).toBe('/run/secrets/smtp');
  });

  it('names every bad field of alerts: and notify:, unknown meter ids included', () => {
    const message = problems(`${head}
alerts:
  staleIntervals: 0
  lowBatteryPct: 120
  silence: true
  meters:
    C: { staleIntervals: 2 }
    A: { leakM3h: -1, bogus: 1 }
notify:
  webhooks: [{ url: "ftp://example.org/x" }, { url: "not a url" }]
  email: { smtp: { host: smtp.example.org, port: 70000, password: x }, from: nobody, to: [] }
`);
    expect(message).toContain('alerts.staleIntervals: must be greater than 0');
    expect(message).toContain('alerts.lowBatteryPct: must be between 0 and 100');
    expect(message).toContain('alerts: unknown setting "silence"');
    expect(message).toContain('alerts.meters.C: no meter "C" in this file');
    expect(message).toContain('alerts.meters.A.leakM3h: must be greater than 0');
    expect(message).toContain('alerts.meters.A: unknown setting "bogus"');
    expect(message).toContain('notify.webhooks[0].url: must be an http:// or https:// URL');
    expect(message).toContain('notify.webhooks[1].url: must be an http:// or https:// URL');
    expect(message).toContain('notify.email.smtp.port: must be a TCP port number (1-65535)');
    expect(message).toContain('notify.email.from: must be an e-mail address');
    expect(message).toContain('notify.email.to: must list at least one address');
    expect(message).toContain('notify.email.smtp.user: required with a password');
  });

  it('names a language it does not speak', () => {
    expect(problems(head.replace('timezone: UTC', 'timezone: UTC, language: fr'))).toContain('pilot.language: must be one of en, ru, kk, ko');
  });

  it('accepts the example pilot\'s leak threshold on its monitor meter', () => {
    const pilot = parsePilotConfig(example);
    expect(pilot.meters.find((m) => m.role === 'monitor')?.leakM3h).toBeGreaterThan(0);
  });
});
