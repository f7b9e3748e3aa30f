import { parseArgs } from 'node:util';
import { FlowPilotError } from '@flowpilot/schema';
import type { GatewayConfig, RegisterBlock } from '@flowpilot/gateway';
import { createLogger } from './logger.ts';
import { createServiceSet } from './service-set.ts';

/**
 * `flowpilot gateway` (SPEC section 10): the Modbus field gateway on the host beside the meters.
 *
 *   gateway [run] [--config gateway.yaml]        poll, keep the outbox, publish, until SIGINT/SIGTERM
 *   gateway probe --config F --meter ID          read one device once and print what it decoded
 *   gateway check [F]                            validate a gateway file (services/gateway check-command.ts)
 *
 * The file is `--config`, else FLOWPILOT_GATEWAY_CONFIG, else ./gateway.yaml. The gateway
 * reads no other setting of the pipeline: its host usually runs nothing else of FlowPilot.
 * The package is loaded only by these commands: the other commands never load the Modbus and
 * serial-port libraries.
 */

export const GATEWAY_USAGE = 'usage: flowpilot gateway [run] [--config gateway.yaml] | gateway probe [--config F] --meter ID | gateway check [gateway.yaml]';

const DEFAULT_CONFIG_FILE = 'gateway.yaml';

export interface GatewayCommandContext {
  env: NodeJS.ProcessEnv;
  print: (line: string) => void;
}

function usageError(problem: string): FlowPilotError {
  return new FlowPilotError('ERR_USAGE', `${problem}; ${GATEWAY_USAGE}`);
}

function flags<const O extends Record<string, { type: 'string' }>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (error) {
    throw usageError((error as Error).message.split(/\.\s/)[0] ?? 'invalid arguments');
  }
}

function configPath(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag ?? (env.FLOWPILOT_GATEWAY_CONFIG?.trim() || DEFAULT_CONFIG_FILE);
}

/**
 * `gateway [run] | probe | check` from an argument list (for scripts and tests). The flowpilot
 * command line parses with commander (cli/program.ts) and calls the functions below.
 */
export async function runGatewayCommand(args: string[], context: GatewayCommandContext = { env: process.env, print: (line) => console.log(line) }): Promise<void> {
  const [first, ...rest] = args;
  if (first === 'check') {
    const { runGatewayCheck } = await import('@flowpilot/gateway');
    return runGatewayCheck(rest.length > 0 ? rest : [configPath(undefined, context.env)], context.print);
  }
  if (first === 'probe') {
    const { values, positionals } = flags(rest, { config: { type: 'string' }, meter: { type: 'string' } });
    if (positionals.length > 0) throw usageError(`unexpected argument "${positionals[0]}"`);
    if (values.meter === undefined) throw usageError('gateway probe needs --meter with the id of a device in the gateway file');
    return probeGateway({ meter: values.meter, ...(values.config !== undefined ? { config: values.config } : {}) }, context);
  }
  const { values, positionals } = flags(first === 'run' ? rest : args, { config: { type: 'string' } });
  if (positionals.length > 0) throw usageError(`unknown gateway command "${positionals[0]}"`);
  return runGateway(values.config !== undefined ? { config: values.config } : {}, context);
}

/** `gateway check [F]` (services/gateway check-command.ts); no file named: the gateway's own default. */
export async function checkGatewayFile(file: string | undefined, { env, print }: GatewayCommandContext): Promise<void> {
  const { runGatewayCheck } = await import('@flowpilot/gateway');
  // After `--`: a file name that starts with '-' is still a file name.
  runGatewayCheck(['--', configPath(file, env)], print);
}

/** `gateway probe [--config F] --meter ID`: reads one device once and prints what it decoded. */
export async function probeGateway(options: { config?: string; meter: string }, { env, print }: GatewayCommandContext): Promise<void> {
  const gateway = await import('@flowpilot/gateway');
  const config = gateway.loadGatewayConfig(configPath(options.config, env));
  const device = gateway.findDevice(config, options.meter);
  let blocks: RegisterBlock[] = [];
  try {
    const result = await gateway.probeDevice(device, { onBlocks: (read) => (blocks = read) });
    for (const line of gateway.formatProbe(result)) print(line);
  } catch (error) {
    // Registers that were read but do not decode: show them, so the map can be fixed against the manual.
    if (blocks.length > 0) {
      print(`${device.meterId}: the registers read (they do not make a reading):`);
      for (const line of gateway.formatBlocks(blocks)) print(line);
    }
    throw error;
  }
}

/** `gateway [run] [--config F]`: polls, keeps the outbox, publishes, until SIGINT/SIGTERM. */
export async function runGateway(options: { config?: string }, { env }: GatewayCommandContext): Promise<void> {
  const gateway = await import('@flowpilot/gateway');
  const file = configPath(options.config, env);
  const config: GatewayConfig = gateway.loadGatewayConfig(file);
  const log = createLogger(env.FLOWPILOT_LOG_LEVEL ?? 'info', 'flowpilot-gateway');
  const services = createServiceSet(log);
  await services.startUp(async () => {
    // Started first, stopped last: the metrics server goes before the gateway says its meters are offline.
    const running = await services.run('gateway', async () => {
      const created = gateway.createGateway({ config, log: log.child({ service: 'gateway' }) });
      await created.start();
      return created;
    });
    const http = await services.run(
      'metrics',
      async () => {
        try {
          return await gateway.serveGatewayHttp(running, config.metrics.host, config.metrics.port);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code !== 'EADDRINUSE' && code !== 'EACCES') throw error;
          throw new FlowPilotError('ERR_GATEWAY_CONFIG', `metrics: ${config.metrics.host}:${config.metrics.port} cannot be listened on (${code}): choose a free port in ${file}`, { cause: error });
        }
      },
      (server) => server.close(),
    );
    log.info({ config: file, devices: config.devices.length, metrics: `${http.url}/metrics`, healthz: `${http.url}/healthz` }, 'FlowPilot gateway running; Ctrl-C stops it');
  });
}
