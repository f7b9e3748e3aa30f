import { TIMED_OUT, withTimeout } from '@flowpilot/async';
import type { Logger } from 'pino';

/** Something a command started and must stop: a server, a client, a child process. */
export interface Stoppable {
  stop(): Promise<void> | void;
}

export interface ServiceSetOptions {
  /** Where SIGINT and SIGTERM come from: the process, or a fake in tests; null handles none. */
  signals?: Pick<NodeJS.Process, 'on'> | null;
  /** Ends the process once every service stopped (0), or at a second signal (130). */
  exit?: (code: number) => void;
  /** One overall deadline for stopping them all. */
  stopDeadlineMs?: number;
}

/**
 * SIGTERM or Ctrl-C stops every part within 5 s (README, "Operating it"; test/broker-restart.test.ts
 * holds it to that): 4.5 s for the services leaves the process time to exit.
 */
export const DEFAULT_SERVICE_SET_OPTIONS = { stopDeadlineMs: 4500 } as const;

export interface ServiceSet {
  /**
   * Starts one service and records it, to be stopped with the rest. When `start` fails, every
   * service already started is stopped and the error is rethrown. Once a signal asked the set
   * to stop, it starts nothing more: the promise never settles, and the process exits.
   */
  run<T extends Stoppable>(name: string, start: () => T | Promise<T>): Promise<T>;
  /** The same, for something whose own method is not `stop()` (a store's `close()`, say). */
  run<T>(name: string, start: () => T | Promise<T>, stop: (service: T) => Promise<void> | void): Promise<T>;
  /** A command's whole start-up: a failure anywhere in it stops what already started, then is rethrown. */
  startUp(body: () => Promise<void>): Promise<void>;
  /** Stops every service, the last started first; resolves by the deadline even if one hangs. */
  stopAll(): Promise<void>;
}

interface Entry {
  name: string;
  stop(): Promise<void> | void;
}

export function createServiceSet(log: Pick<Logger, 'info' | 'warn'>, options: ServiceSetOptions = {}): ServiceSet {
  const signals = options.signals === undefined ? process : options.signals;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const stopDeadlineMs = options.stopDeadlineMs ?? DEFAULT_SERVICE_SET_OPTIONS.stopDeadlineMs;
  const running: Entry[] = [];
  /** The start in progress: a signal waits for it, so what it starts is stopped too. */
  let starting: Promise<unknown> | null = null;
  let signalled = false;
  /** Stops run one after another: a second call waits for the first, then stops what started since. */
  let stops: Promise<void> = Promise.resolve();

  /**
   * Reverse start order within one overall deadline; a service still stuck when its share runs
   * out is left behind so the rest still stop. What was accepted is safe either way: it is in
   * the durable store (SPEC section 6).
   */
  async function stopEach(batch: Entry[], deadline: number): Promise<void> {
    for (const service of batch.reverse()) {
      const remainingMs = Math.max(100, deadline - Date.now());
      const stopped = Promise.resolve()
        .then(() => service.stop())
        .then(
          () => 'stopped' as const,
          (error: unknown) => ({ error }),
        );
      const outcome = await withTimeout(stopped, remainingMs);
      if (outcome === TIMED_OUT) log.warn({ service: service.name }, 'did not stop in time');
      else if (outcome !== 'stopped') log.warn({ service: service.name, err: (outcome.error as Error)?.message ?? String(outcome.error) }, 'stopped with an error');
    }
  }

  function stopAll(deadline = Date.now() + stopDeadlineMs): Promise<void> {
    const batch = running.splice(0);
    stops = stops.then(() => stopEach(batch, deadline));
    return stops;
  }

  async function onSignal(signal: string): Promise<void> {
    if (signalled) {
      log.warn({ signal }, 'forced exit');
      exit(130);
      return;
    }
    signalled = true;
    log.info({ signal }, 'stopping');
    const deadline = Date.now() + stopDeadlineMs;
    if (starting) {
      let timer: NodeJS.Timeout | undefined;
      const waited = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        timer.unref?.();
      });
      await Promise.race([starting.then(noop, noop), waited]);
      clearTimeout(timer);
    }
    await stopAll(deadline);
    log.info('stopped');
    exit(0);
  }

  if (signals) {
    signals.on('SIGINT', () => void onSignal('SIGINT'));
    signals.on('SIGTERM', () => void onSignal('SIGTERM'));
  }

  async function run<T>(name: string, start: () => T | Promise<T>, stop?: (service: T) => Promise<void> | void): Promise<T> {
    if (signalled) return new Promise<never>(noop);
    const attempt = Promise.resolve().then(start);
    starting = attempt;
    let service: T;
    try {
      service = await attempt;
    } catch (error) {
      await stopAll();
      throw error;
    } finally {
      if (starting === attempt) starting = null;
    }
    running.push({ name, stop: stop ? () => stop(service) : () => (service as Stoppable).stop() });
    if (signalled) return new Promise<never>(noop);
    return service;
  }

  return {
    run: run as ServiceSet['run'],
    async startUp(body) {
      try {
        await body();
      } catch (error) {
        await stopAll();
        throw error;
      }
    },
    stopAll: () => stopAll(),
  };
}

function noop(): void {}
