import { createServer, type AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import { connectAsync } from 'mqtt';

/**
 * The bare-Aedes ceiling's separate processes, no FlowPilot code in them:
 *   `broker`            Aedes with its defaults on a free loopback port; prints {"port":N}
 *   `subscriber <port>` one MQTT.js client subscribed to meters/# at QoS 1; prints {"ready":true},
 *                       and {"received":N} when it gets SIGTERM
 * Run as `node --import tsx bench/aedes-ceiling-child.ts …` by bench/ceilings.ts.
 */

const [mode, portArg] = process.argv.slice(2);

if (mode === 'broker') {
  const broker = await Aedes.createBroker();
  const server = createServer(broker.handle);
  server.listen(0, '127.0.0.1', () => {
    console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }));
  });
  process.on('SIGTERM', () => {
    broker.close(() => server.close(() => process.exit(0)));
    setTimeout(() => process.exit(0), 3_000).unref();
  });
} else if (mode === 'subscriber' && portArg) {
  const client = await connectAsync(`mqtt://127.0.0.1:${portArg}`, { clientId: 'bench-ceiling-subscriber', protocolVersion: 4, clean: false, reconnectPeriod: 0 });
  let received = 0;
  client.on('message', () => (received += 1));
  await client.subscribeAsync('meters/#', { qos: 1 });
  console.log(JSON.stringify({ ready: true }));
  process.on('SIGTERM', () => {
    console.log(JSON.stringify({ received }));
    client.end(true, {}, () => process.exit(0));
    setTimeout(() => process.exit(0), 3_000).unref();
  });
} else {
  console.error('usage: aedes-ceiling-child.ts broker | subscriber <port>');
  process.exit(2);
}
