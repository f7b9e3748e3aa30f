import { connectAsync, type MqttClient } from 'mqtt';
import { wireReading } from './pipeline.ts';

/**
 * Meters for the Jepsen-style checks of SPEC section 6: each publishes its readings in order,
 * QoS 1 on a persistent session, and records every (meterId, seq) it got a PUBACK for. Across
 * broker restarts MQTT.js reconnects with the same client id and resends what is unacknowledged.
 */
export interface AckedPublisher {
  acked: Set<string>;
  /** Publishes until stop() (or `total` readings per meter), resolving when all are acknowledged. */
  run(): Promise<void>;
  stop(): void;
  close(): Promise<void>;
}

export async function startAckedPublishers(options: {
  mqttUrl: string;
  username: string;
  password: string;
  meterIds: readonly string[];
  totalPerMeter: number;
  startTsMs: number;
  /** Pause between publishes of one meter, to spread the run over time. */
  pauseMs?: number;
}): Promise<AckedPublisher> {
  const acked = new Set<string>();
  let stopped = false;
  const clients: MqttClient[] = await Promise.all(
    options.meterIds.map((id) =>
      connectAsync(options.mqttUrl, {
        clientId: `${options.username}:${id}`,
        username: options.username,
        password: options.password,
        protocolVersion: 4,
        clean: false,
        reconnectPeriod: 250,
        connectTimeout: 5000,
      }),
    ),
  );
  return {
    acked,
    async run() {
      await Promise.all(
        clients.map(async (client, index) => {
          const id = options.meterIds[index]!;
          for (let seq = 0; seq < options.totalPerMeter && !stopped; seq++) {
            const payload = JSON.stringify(wireReading(id, seq, options.startTsMs + seq * 60_000));
            try {
              await client.publishAsync(`meters/${id}/readings`, payload, { qos: 1 });
            } catch (error) {
              if (stopped) return; // closed by the test's teardown
              throw error;
            }
            acked.add(`${id}#${seq}`);
            if (options.pauseMs) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
          }
        }),
      );
    },
    stop() {
      stopped = true;
    },
    async close() {
      stopped = true;
      await Promise.all(clients.map((client) => client.endAsync(true)));
    },
  };
}
