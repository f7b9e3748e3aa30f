import { EventEmitter } from 'node:events';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createServiceSet, DEFAULT_SERVICE_SET_OPTIONS, type Stoppable } from './service-set.ts';

/** A log that keeps its lines, for the warnings a stop must leave. */
function memoryLog() {
  const lines: { level: number; msg: string; service?: string; signal?: string; err?: string }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { log, lines };
}

/** A fake world: signals come from an emitter, exits are recorded, stops are recorded in order. */
function world(options: { stopDeadlineMs?: number } = {}) {
  const { log, lines } = memoryLog();
  const signals = new EventEmitter();
  const exits: number[] = [];
  const stopped: string[] = [];
  const services = createServiceSet(log, { signals: signals as unknown as NodeJS.Process, exit: (code) => void exits.push(code), ...options });
  const fake = (name: string, stop: () => Promise<void> | void = () => {}): Stoppable & { name: string } => ({
    name,
    stop: async () => {
      await stop();
      stopped.push(name);
    },
  });
  return { services, signals, exits, stopped, lines, fake };
}

const never = () => new Promise<void>(() => {});

afterEach(() => {
  vi.useRealTimers();
});

describe('createServiceSet', () => {
  it('stops the services in reverse start order, each by its own stop', async () => {
    const { services, stopped, fake } = world();
    await services.run('influxdb', () => fake('influxdb'));
    const store = await services.run('store', () => ({ close: () => void stopped.push('store (closed)') }), (s) => s.close());
    await services.run('broker', async () => fake('broker'));
    expect(store).toHaveProperty('close');
    await services.stopAll();
    expect(stopped).toEqual(['broker', 'store (closed)', 'influxdb']);
    await services.stopAll();
    expect(stopped).toHaveLength(3); // each is stopped once
  });

  it('stops what already started when a start fails, and rethrows its error', async () => {
    const { services, stopped, fake } = world();
    await services.run('store', () => fake('store'));
    await services.run('broker', () => fake('broker'));
    const failure = new Error('port 1883 is in use');
    await expect(services.run('api', () => Promise.reject(failure))).rejects.toBe(failure);
    expect(stopped).toEqual(['broker', 'store']);
  });

  it('stops what already started when the start-up fails between two services', async () => {
    const { services, stopped, fake } = world();
    const failure = new Error('no MQTT login');
    await expect(
      services.startUp(async () => {
        await services.run('store', () => fake('store'));
        await services.run('ingest', () => fake('ingest'));
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(stopped).toEqual(['ingest', 'store']);
  });

  it('leaves a service that hangs behind when the deadline passes, and still stops the rest', async () => {
    vi.useFakeTimers();
    const { services, stopped, lines, fake } = world();
    await services.run('store', () => fake('store'));
    await services.run('ingest', () => fake('ingest', never));
    await services.run('api', () => fake('api'));
    let done = false;
    void services.stopAll().then(() => (done = true));
    await vi.advanceTimersByTimeAsync(DEFAULT_SERVICE_SET_OPTIONS.stopDeadlineMs - 1);
    expect({ done, stopped }).toEqual({ done: false, stopped: ['api'] });
    await vi.advanceTimersByTimeAsync(1);
    expect({ done, stopped }).toEqual({ done: true, stopped: ['api', 'store'] });
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'did not stop in time', service: 'ingest' }));
  });

  it('logs a stop that fails and goes on with the rest', async () => {
    const { services, stopped, lines, fake } = world();
    await services.run('store', () => fake('store'));
    await services.run('broker', () => ({ stop: () => Promise.reject(new Error('socket hang up')) }));
    await services.stopAll();
    expect(stopped).toEqual(['store']);
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'stopped with an error', service: 'broker', err: 'socket hang up' }));
  });

  it('stops everything on SIGTERM, then exits 0; a second signal forces the exit with 130', async () => {
    vi.useFakeTimers();
    const { services, signals, exits, stopped, fake } = world();
    await services.run('store', () => fake('store'));
    await services.run('ingest', () => fake('ingest', never));
    signals.emit('SIGTERM');
    await vi.advanceTimersByTimeAsync(1000);
    expect(exits).toEqual([]);
    signals.emit('SIGINT');
    expect(exits).toEqual([130]);
    await vi.advanceTimersByTimeAsync(DEFAULT_SERVICE_SET_OPTIONS.stopDeadlineMs);
    expect(stopped).toEqual(['store']);
    expect(exits).toEqual([130, 0]);
  });

  it('on a signal during a start, stops that service too once it is up, and starts nothing more', async () => {
    const { services, signals, exits, stopped, fake } = world();
    await services.run('store', () => fake('store'));
    let up: (service: Stoppable) => void = () => {};
    const brokerUp = new Promise<Stoppable>((resolve) => (up = resolve));
    const starting = services.run('broker', () => brokerUp);
    signals.emit('SIGINT');
    up(fake('broker'));
    const next = vi.fn(() => fake('api'));
    void starting.then(() => services.run('api', next));
    await vi.waitFor(() => expect(exits).toEqual([0]));
    expect(stopped).toEqual(['broker', 'store']);
    expect(next).not.toHaveBeenCalled();
  });
});
