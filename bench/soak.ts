import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLocalInflux } from '@flowpilot/influx';
import { envNumber, installSignalHandlers, log, makeTempDir, onTeardown, readInfluxdPid, RESULTS_DIR, teardownAll } from './harness.ts';
import { describeMachine } from './machine.ts';
import { steadyGrowthMiB } from './report.ts';
import { benchSteadyLoad, closeLoadSession, openLoadSession, writeBenchPilot, type BenchWorld } from './pipeline-scenarios.ts';

/**
 * `npm run soak`: the bench's steady load (1,000 readings/s from 500 meters) for 30 minutes,
 * printing the broker's RSS every 10 s and writing the curve to bench-results/soak.json.
 * BENCH_SOAK_MIN shortens (or lengthens) it; BENCH_SOAK_RATE and BENCH_METERS change the load.
 */

const minutes = envNumber('BENCH_SOAK_MIN', 30);
const rate = envNumber('BENCH_SOAK_RATE', 1_000);
const meters = envNumber('BENCH_METERS', 500);
const sampleSec = envNumber('BENCH_SOAK_SAMPLE_SEC', 10);

async function main(): Promise<void> {
  installSignalHandlers();
  const machine = describeMachine();
  const influxDir = makeTempDir('influxd');
  const influxd = await startLocalInflux({ dataDir: influxDir });
  onTeardown('stop influxd', () => influxd.stop());
  const { pilotFile, meterIds } = writeBenchPilot(meters);
  const world: BenchWorld = { influxUrl: influxd.url, pilotFile, meterIds, peaks: [], influxdPid: readInfluxdPid(influxDir) };
  log(`soak: ${rate} readings/s from ${meters} meters for ${minutes} min`);
  console.log('   t (s)   broker RSS (MiB)');
  const session = await openLoadSession(world, 'soak', 'bench_soak', meterIds);
  const result = await benchSteadyLoad(session, {
    label: 'soak',
    ratePerSec: rate,
    durationMs: minutes * 60_000,
    window: 4,
    sampleIntervalMs: sampleSec * 1000,
    onSample: (p) => console.log(`${p.atSec.toFixed(0).padStart(8)}   ${p.rssMiB.toFixed(1).padStart(8)}`),
  });
  const brokerPeakRssMiB = await closeLoadSession(world, session);
  const out = { machine, minutes, ...result, brokerPeakRssMiB };
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, 'soak.json'), `${JSON.stringify(out, null, 2)}\n`);
  console.log(
    `\nsoak: ${result.achievedPerSec}/s for ${(result.durationSec / 60).toFixed(1)} min; broker RSS ${result.startRssMiB} → ${result.endRssMiB} MiB ` +
      `(${result.growthMiB >= 0 ? '+' : ''}${result.growthMiB} MiB), median of the last third − first third ${steadyGrowthMiB(result.curve).toFixed(1)} MiB, 2nd-half slope ${result.secondHalfSlopeMiBPerMin} MiB/min, peak ${brokerPeakRssMiB.toFixed(1)} MiB; ` +
      `lost ${result.check.lost} of ${result.check.checked}\nWritten: bench-results/soak.json`,
  );
  process.exitCode = result.check.lost > 0 ? 1 : 0;
}

main()
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => teardownAll());
