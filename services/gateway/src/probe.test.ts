import { describe, expect, it } from 'vitest';
import { FlowPilotError } from '@flowpilot/schema';
import { parseGatewayConfig } from './config.ts';
import { renderGatewayMetrics } from './metrics.ts';
import { findDevice, formatProbe, probeDevice } from './probe.ts';
import { encodeAlarms, encodeValue } from './registers.ts';
import { SYSTEM_CLOCK, SYSTEM_TIMERS } from './time.ts';
import { createFakeModbus } from './test-support.ts';

const config = parseGatewayConfig(`
broker: { url: "mqtt://127.0.0.1:1883", username: gw-test, password: secret }
dataDir: /tmp/unused
devices:
  - meterId: M1
    transport: tcp
    host: 192.0.2.10
    unitId: 7
    intervalSec: 60
    registers:
      flow:        { table: input,   address: 0,  type: float32 }
      total:       { table: holding, address: 10, type: float64, unit: m3 }
      temperature: { table: input,   address: 4,  type: int16, scale: 0.1, unit: C }
      alarms:      { table: input,   address: 20, type: uint16, bits: { 0: empty_pipe, 1: reverse_flow } }
`);

function fakeMeter() {
  const modbus = createFakeModbus({ timers: SYSTEM_TIMERS, clock: SYSTEM_CLOCK, latencyMs: 1 });
  const device = findDevice(config, 'M1');
  const map = device.registers;
  modbus.setWords('tcp 192.0.2.10:502', 7, 'input', 0, encodeValue(map.flow, 42.7));
  modbus.setWords('tcp 192.0.2.10:502', 7, 'holding', 10, encodeValue(map.total, 125031.442));
  modbus.setWords('tcp 192.0.2.10:502', 7, 'input', 4, encodeValue(map.temperature!, 11.8));
  modbus.setWords('tcp 192.0.2.10:502', 7, 'input', 20, encodeAlarms(map.alarms!, ['empty_pipe']));
  return { modbus, device };
}

describe('flowpilot gateway probe', () => {
  it('prints every quantity with its value in the SPEC unit and its raw registers in hex', async () => {
    const { modbus, device } = fakeMeter();
    const result = await probeDevice(device, { modbus: modbus.factory, timers: SYSTEM_TIMERS });
    const lines = formatProbe(result);
    expect(lines[0]).toBe('M1: unit 7 on tcp 192.0.2.10:502, profile generic, 3 reads');
    expect(lines.slice(1).map((line) => line.replace(/\s+/g, ' ').trim())).toEqual([
      'flow 42.7 m³/h input 0-1 float32 big [0x422a 0xcccd]',
      `total 125031.442 m³ holding 10-13 float64 big (m3) [${encodeValue(device.registers.total, 125031.442)
        .map((w) => `0x${w.toString(16).padStart(4, '0')}`)
        .join(' ')}]`,
      'temperature 11.8 °C input 4 int16 ×0.1 (C) [0x0076]',
      'alarms empty_pipe input 20 uint16 [0x0001]',
    ]);
    // Read once, and the link closed.
    expect(modbus.reads).toHaveLength(3);
    expect(modbus.closed).toEqual(['tcp 192.0.2.10:502']);
  });

  it('reports a device that does not answer as ERR_UNREACHABLE, naming the request and the kind of failure', async () => {
    const { modbus, device } = fakeMeter();
    modbus.failNext('tcp 192.0.2.10:502', 7, 'exception');
    const failure = await probeDevice(device, { modbus: modbus.factory, timers: SYSTEM_TIMERS }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(FlowPilotError);
    expect((failure as FlowPilotError).code).toBe('ERR_UNREACHABLE');
    expect((failure as FlowPilotError).message).toContain('M1: reading holding registers 10+4 of unit 7 on tcp 192.0.2.10:502 failed (exception)');
  });

  it('names the meters of the config when --meter names none', () => {
    expect(() => findDevice(config, 'M9')).toThrow('--meter M9: no such device in the config (it has M1)');
  });
});

describe('the Prometheus text', () => {
  it('has one sample per meter and kind, and the outbox\'s depth and age', () => {
    const failures = { timeout: 2, crc: 0, exception: 0, connection: 0, decode: 0, overrun: 0, outbox_full: 0, outbox_error: 0 };
    const text = renderGatewayMetrics(
      {
        devices: [
          {
            meterId: 'M1',
            endpoint: 'tcp 192.0.2.10:502',
            unitId: 7,
            intervalSec: 60,
            polls: 10,
            readings: 8,
            failures,
            consecutiveFailures: 2,
            sensorFault: false,
            lastPollAtMs: 60_000,
            lastReadingAtMs: 0,
            lastFailure: null,
            nextSeq: 10,
            mqttConnected: true,
            published: 8,
            publishes: 2,
          },
        ],
        outbox: { readings: 0, maxReadings: 1000, oldestTsMs: null, full: false },
      },
      90_000,
    );
    expect(text).toContain('# TYPE flowpilot_gateway_polls_total counter\nflowpilot_gateway_polls_total{meter="M1"} 10\n');
    expect(text).toContain('flowpilot_gateway_poll_failures_total{meter="M1",kind="timeout"} 2\n');
    expect(text).toContain('flowpilot_gateway_poll_failures_total{meter="M1",kind="outbox_full"} 0\n');
    expect(text).toContain('flowpilot_gateway_last_reading_age_seconds{meter="M1"} 90\n');
    expect(text).toContain('flowpilot_gateway_connected{meter="M1"} 1\n');
    expect(text).toContain('flowpilot_gateway_published_total{meter="M1"} 8\n');
    expect(text).toContain('# TYPE flowpilot_gateway_outbox_readings gauge\nflowpilot_gateway_outbox_readings 0\n');
    expect(text).toContain('flowpilot_gateway_outbox_oldest_age_seconds 0\n');
  });
});
