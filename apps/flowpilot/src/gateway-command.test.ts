import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FlowPilotError } from '@flowpilot/schema';
import { runGatewayCommand } from './gateway-command.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function gatewayFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowpilot-gateway-command-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'site.yaml');
  writeFileSync(
    file,
    `broker: { url: "mqtt://127.0.0.1:1883", username: gw-ps3, password: secret }
devices:
  - meterId: ALM-PS3-DUT1
    transport: tcp
    host: 192.0.2.10
    unitId: 1
    intervalSec: 60
    registers:
      flow:  { table: input, address: 0, type: float32 }
      total: { table: input, address: 2, type: float32 }
`,
  );
  return file;
}

async function failure(args: string[], env: NodeJS.ProcessEnv = {}): Promise<FlowPilotError> {
  const error = await runGatewayCommand(args, { env, print: () => {} }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FlowPilotError);
  return error as FlowPilotError;
}

describe('flowpilot gateway: the command line', () => {
  it.each([
    [['probe', '--config', 'x.yaml'], 'gateway probe needs --meter'],
    [['probe', '--meter', 'M', 'extra'], 'unexpected argument "extra"'],
    [['--conf', 'x.yaml'], "Unknown option '--conf'"],
    [['frobnicate'], 'unknown gateway command "frobnicate"'],
  ])('%j is a usage error', async (args, problem) => {
    const error = await failure(args);
    expect(error.code).toBe('ERR_USAGE');
    expect(error.message).toContain(problem);
    expect(error.message).toContain('usage: flowpilot gateway');
  });

  it('takes the file from FLOWPILOT_GATEWAY_CONFIG when --config is absent, for check and probe', async () => {
    const file = gatewayFile();
    const lines: string[] = [];
    await runGatewayCommand(['check'], { env: { FLOWPILOT_GATEWAY_CONFIG: file }, print: (line) => lines.push(line) });
    expect(lines[0]).toContain(`${file} is valid: 1 device`);
    const unknown = await failure(['probe', '--meter', 'NOPE'], { FLOWPILOT_GATEWAY_CONFIG: file });
    expect(unknown.message).toContain('--meter NOPE: no such device in the config (it has ALM-PS3-DUT1)');
  });

  it('names a gateway file that does not exist', async () => {
    const error = await failure([], { FLOWPILOT_GATEWAY_CONFIG: '/nonexistent/gateway.yaml' });
    expect(error.code).toBe('ERR_GATEWAY_CONFIG');
    expect(error.message).toContain('/nonexistent/gateway.yaml');
  });
});
