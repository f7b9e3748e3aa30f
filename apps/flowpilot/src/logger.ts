import pino, { type Logger } from 'pino';

/** Structured logs (pino); human-readable when a person watches the terminal. */
export function createLogger(level: string, name = 'flowpilot'): Logger {
  if (process.stdout.isTTY) {
    return pino({ name, level, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' } } });
  }
  return pino({ name, level });
}
