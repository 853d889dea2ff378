/**
 * The real transport (commitAckTransport, AckGate) with stand-ins for mqtt.js clients, which are
 * what the SDK's connect returns: two live clients at once cannot be had from the real broker on
 * demand. The SDK can make its new mqtt.js client while the old one still reads packets: e.g. MqttBase's
 * `reconnecting` state (SAS token renewal) calls end(false), and after 30 s `forceDisconnect` calls
 * end(true) — which returns at once because the client is already `disconnecting` (mqtt.js 4.3.8
 * end(): `if (this.disconnecting) { cb(); return }`) — then _connectClient: the old socket is never
 * destroyed here and goes on being read until the broker drops it. An input the old client reads after
 * wrap() of the new one is held among the NEW connection's entries (with the old client's send).
 * The SDK's own listener is already removed from the old client, so the app never sees it; the next
 * release on the new connection then sends that entry's PUBACK to the old client, and the new
 * message's PUBACK is never sent (with a `$.mid`: never, on this connection).
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { AckGate, commitAckTransport } from '../../agent/edge/transport.js';

const require = createRequire(require_resolve());
function require_resolve() {
  return createRequire(import.meta.url).resolve('azure-iot-mqtt-base');
}
const mqtt = require('mqtt');

class FakeClient extends EventEmitter {
  sent: Array<{ cmd: string; messageId: number }> = [];
  constructor(readonly name: string) {
    super();
  }
  handleMessage(_packet: unknown, cb: (err?: Error) => void) {
    cb();
  }
  _sendPacket(packet: { cmd: string; messageId: number }) {
    this.sent.push(packet);
  }
  connack(sessionPresent: boolean) {
    this.emit('packetreceive', { cmd: 'connack', sessionPresent });
  }
  /** What mqtt.js 4.3.8 _handlePublish does for QoS 1. */
  publish(topic: string, payload: Buffer, messageId: number) {
    const packet = { cmd: 'publish', topic, payload, qos: 1, messageId };
    this.emit('packetreceive', packet);
    this.emit('message', topic, payload, packet);
    this.handleMessage(packet, (err) => {
      if (!err) this._sendPacket({ cmd: 'puback', messageId });
    });
  }
}

function setup() {
  const gate = new AckGate();
  const T = commitAckTransport({ gate });
  const t = new T({ type: 1, on() {}, stop() {}, getDeviceCredentials() {} } as never) as unknown as { _mqtt: { mqttProvider: { connect(u: string, o: unknown): FakeClient } } };
  const original = mqtt.connect;
  const connect = (c: FakeClient) => {
    mqtt.connect = () => c;
    try {
      return t._mqtt.mqttProvider.connect('mqtts://x', {});
    } finally {
      mqtt.connect = original;
    }
  };
  // What inputs.ts does once a message's readings committed.
  const commit = (payload: Buffer, mid?: string) => gate.release(mid, gate.connectionOf(payload) ?? gate.connection);
  return { gate, connect, commit };
}

const T = (bag: string) => `devices/d/modules/m/inputs/readings/${bag}`;

describe('an old mqtt.js client still reading after the SDK made a new one', () => {
  it('the new connection\'s message without $.mid gets its PUBACK on the new connection once committed', () => {
    const { connect, commit } = setup();
    const a = connect(new FakeClient('old'));
    a.connack(true);
    const b = connect(new FakeClient('new')); // SDK made the new client; a's socket is still open
    const x = Buffer.from('x');
    a.publish(T('source=x'), x, 7); // read by the old client (SDK listener already removed: the app never gets it)
    b.connack(true);
    const y = Buffer.from('y');
    b.publish(T('source=y'), y, 1);
    commit(y); // y committed
    expect(a.sent).toEqual([]); // x was never stored: no PUBACK for it, on any connection
    expect(b.sent).toEqual([{ cmd: 'puback', messageId: 1 }]);
  });

  it('the redelivered copy of a message with $.mid gets its PUBACK on the new connection once committed', () => {
    const { connect, commit } = setup();
    const a = connect(new FakeClient('old'));
    a.connack(true);
    const b = connect(new FakeClient('new'));
    a.publish(T('%24.mid=m1'), Buffer.from('x'), 7);
    b.connack(true);
    const again = Buffer.from('x');
    b.publish(T('%24.mid=m1'), again, 3); // the broker delivers it again on the new connection
    commit(again, 'm1');
    expect(b.sent).toEqual([{ cmd: 'puback', messageId: 3 }]);
  });
});
