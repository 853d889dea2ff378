/** The input acknowledgements the agent holds until a commit, and the room it leaves the packet loop. */
import { describe, expect, it } from 'vitest';
import { AckGate, messageIdOf } from '../../agent/edge/transport.js';

const topic = (mid: string) => `devices/gw/modules/m/inputs/readings/%24.mid=${mid}&source=a`;

describe('AckGate', () => {
  it('lets the packet loop go on while at most its limit are held, and resumes it when a release makes room', () => {
    const gate = new AckGate(2);
    const sent: string[] = [];
    const resumed: string[] = [];
    const arrive = (mid: string) => {
      gate.hold(topic(mid), () => sent.push(mid));
      gate.whenRoom(() => resumed.push(mid));
    };
    arrive('a');
    arrive('b');
    expect(resumed).toEqual(['a', 'b']); // two are held: the loop goes on (edgeHub's window is the limit)
    arrive('c');
    expect(resumed).toEqual(['a', 'b']); // one more: the loop waits after c
    gate.release('a');
    expect(sent).toEqual(['a']);
    expect(resumed).toEqual(['a', 'b', 'c']);
    arrive('d');
    expect(resumed).toEqual(['a', 'b', 'c']);
    gate.release('b');
    expect(resumed).toEqual(['a', 'b', 'c', 'd']);
    expect(gate.size).toBe(2);
  });

  it('acknowledges messages with the same $.mid one each, oldest first', () => {
    const gate = new AckGate();
    const sent: string[] = [];
    gate.hold(topic('x'), () => sent.push('x-1'));
    gate.hold(topic('x'), () => sent.push('x-2'));
    expect(gate.size).toBe(2);
    gate.release('x');
    expect(sent).toEqual(['x-1']);
    gate.release('x');
    expect(sent).toEqual(['x-1', 'x-2']);
    gate.release('x');
    expect(sent).toEqual(['x-1', 'x-2']);
    expect(gate.size).toBe(0);
  });

  it('sends nothing on a new connection for a message of the connection before', () => {
    const gate = new AckGate();
    const sent: string[] = [];
    const before = gate.connection;
    gate.hold('devices/gw/modules/m/inputs/readings/', () => sent.push('old'));
    gate.clear(); // reconnected
    gate.hold('devices/gw/modules/m/inputs/readings/', () => sent.push('new-1'));
    gate.hold(topic('y'), () => sent.push('y'));
    gate.release(undefined, before);
    gate.release('y', before);
    expect(sent).toEqual([]);
    gate.release(undefined, gate.connection);
    gate.release('y', gate.connection);
    expect(sent).toEqual(['new-1', 'y']);
  });

  it('sends each acknowledgement once, never another message\'s for an id it does not hold, the oldest anonymous one for a message without an id, and forgets a lost connection\'s', () => {
    const gate = new AckGate();
    const sent: string[] = [];
    gate.hold('devices/gw/modules/m/inputs/readings/', () => sent.push('anon-1'));
    gate.hold('devices/gw/modules/m/inputs/readings/', () => sent.push('anon-2'));
    gate.hold(topic('x'), () => sent.push('x'));
    gate.release('x');
    gate.release('x'); // already sent; an id not held never acknowledges another message
    expect(sent).toEqual(['x']);
    gate.release(undefined);
    expect(sent).toEqual(['x', 'anon-1']);
    gate.clear();
    gate.release(undefined);
    expect(sent).toEqual(['x', 'anon-1']);
    expect(gate.size).toBe(0);
  });

  it('reads $.mid from the property bag, percent-encoded', () => {
    expect(messageIdOf(topic('4f%2Fb'))).toBe('4f/b');
    expect(messageIdOf('devices/gw/modules/m/inputs/readings/source=a')).toBeNull();
  });

  it('calls a copy of an earlier connection stale only when the same $.mid and bytes are held again on the current one', () => {
    const gate = new AckGate();
    const first = gate.clear();
    const payload = Buffer.from('{"pumpId":"p"}');
    gate.noteArrival(payload, 1, first);
    gate.hold(topic('m1'), () => undefined, payload);
    expect(gate.stale(payload, 'm1')).toBe(false); // its own connection
    gate.clear();
    expect(gate.stale(payload, 'm1')).toBe(false); // not delivered again (yet, or the broker lost it)
    gate.hold(topic('m1'), () => undefined, Buffer.from('{"pumpId":"other"}'));
    expect(gate.stale(payload, 'm1')).toBe(false); // another message reusing the id
    gate.hold(topic('m1'), () => undefined, Buffer.from(payload));
    expect(gate.stale(payload, 'm1')).toBe(true);
    expect(gate.stale(payload, undefined)).toBe(false); // without $.mid nothing can be matched
    const qos0 = Buffer.from('x');
    gate.noteArrival(qos0, 0, first);
    expect(gate.stale(qos0, 'm1')).toBe(false);
  });
});
