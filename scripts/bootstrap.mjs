#!/usr/bin/env node
// `npm start` and `npm test` on a fresh checkout: install what is missing, then run.
// Plain JavaScript on purpose: it runs before the dependencies (tsx, vitest) exist.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [command, ...args] = process.argv.slice(2);

function fail(sentence) {
  console.error(`flowpilot: ${sentence}`);
  process.exit(1);
}

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) fail(`Node.js ${process.versions.node} is too old: install Node.js 20.19 or newer.`);

function run(cmd, cmdArgs) {
  const result = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit' });
  if (result.error) fail(`could not run ${cmd}: ${result.error.message}`);
  return result.status ?? 1;
}

// Install dependencies when they are missing or older than the lockfile.
const installed = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  console.log('Installing dependencies (npm ci)…');
  if (run('npm', ['ci', '--no-audit', '--no-fund']) !== 0) fail('npm ci failed: check the network access to the npm registry and run `npm ci` by hand to see why.');
}

if (command === 'start') {
  process.exit(run(process.execPath, [join(root, 'apps/flowpilot/bin/flowpilot.js'), 'start', ...args]));
} else if (command === 'test') {
  const steps = [
    ['lint', ['npx', ['eslint', '.']]],
    ['typecheck', ['npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']]],
    ['typecheck (dashboard, browser code)', ['npx', ['tsc', '-p', 'services/api/dashboard/tsconfig.json', '--noEmit']]],
    ['unit and integration tests', ['npx', ['vitest', 'run', ...args]]],
  ];
  for (const [name, [cmd, cmdArgs]] of steps) {
    console.log(`\n▶ ${name}`);
    const status = run(cmd, cmdArgs);
    if (status !== 0) {
      console.error(`\n✖ ${name} failed`);
      process.exit(status);
    }
  }
} else {
  fail(`unknown command "${command}": use start or test.`);
}
