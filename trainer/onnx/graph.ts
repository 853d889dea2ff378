/**
 * A small ONNX graph builder: float32/int64 initializers, nodes with typed attributes, and
 * float32 inputs/outputs whose dimensions are numbers or symbolic names (e.g. "batch").
 * Names are generated from a counter, so the same calls always give the same graph.
 */
import { AttributeType, DataType } from './proto.js';

export type Attribute =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'string'; value: string };

export type Dim = number | string;

export const int = (value: number): Attribute => ({ kind: 'int', value });
export const float = (value: number): Attribute => ({ kind: 'float', value });
export const ints = (value: readonly number[]): Attribute => ({ kind: 'ints', value });

interface TensorInit {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
}

interface NodeInit {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  attribute: Record<string, unknown>[];
}

interface ValueInfoInit {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: Record<string, unknown>[] } } };
}

/** Plain object matching onnx.GraphProto, ready for protobufjs. */
export interface GraphProtoInit {
  name: string;
  node: NodeInit[];
  initializer: TensorInit[];
  input: ValueInfoInit[];
  output: ValueInfoInit[];
}

export class GraphBuilder {
  private readonly nodes: NodeInit[] = [];
  private readonly initializers: TensorInit[] = [];
  private readonly inputs: ValueInfoInit[] = [];
  private readonly outputs: ValueInfoInit[] = [];
  private readonly names = new Set<string>();
  private counter = 0;

  constructor(readonly name: string) {}

  /** Adds a float32 constant; returns its name. */
  floatConst(name: string, dims: readonly number[], data: ArrayLike<number>): string {
    checkSize(name, dims, data.length);
    const bytes = new Uint8Array(data.length * 4);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i] as number, true);
    return this.addInitializer(name, dims, DataType.FLOAT, bytes);
  }

  /** Adds an int64 constant (shape or index arguments); returns its name. */
  int64Const(name: string, dims: readonly number[], data: readonly number[]): string {
    checkSize(name, dims, data.length);
    const bytes = new Uint8Array(data.length * 8);
    const view = new DataView(bytes.buffer);
    data.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
    return this.addInitializer(name, dims, DataType.INT64, bytes);
  }

  /** Adds a node with one output, named `${hint ?? opType}_${n}`; returns the output name. */
  op(opType: string, inputs: readonly string[], attrs: Record<string, Attribute> = {}, hint?: string): string {
    const output = this.fresh(hint ?? opType.toLowerCase());
    this.node(opType, inputs, [output], attrs);
    return output;
  }

  /** Adds a node with explicit output names. */
  node(opType: string, inputs: readonly string[], outputs: readonly string[], attrs: Record<string, Attribute> = {}): void {
    for (const out of outputs) this.claim(out);
    this.nodes.push({
      input: [...inputs],
      output: [...outputs],
      name: `${opType}_${this.nodes.length}`,
      op_type: opType,
      attribute: Object.keys(attrs)
        .sort()
        .map((key) => attributeProto(key, attrs[key] as Attribute)),
    });
  }

  /** Declares a float32 graph input. */
  input(name: string, shape: readonly Dim[]): string {
    this.claim(name);
    this.inputs.push(valueInfo(name, shape));
    return name;
  }

  /** Declares a float32 graph output (an existing value, e.g. made by `node`). */
  output(name: string, shape: readonly Dim[]): void {
    this.outputs.push(valueInfo(name, shape));
  }

  toProto(): GraphProtoInit {
    return {
      name: this.name,
      node: this.nodes,
      initializer: this.initializers,
      input: this.inputs,
      output: this.outputs,
    };
  }

  private addInitializer(name: string, dims: readonly number[], dataType: number, raw: Uint8Array): string {
    this.claim(name);
    this.initializers.push({ name, dims: [...dims], data_type: dataType, raw_data: raw });
    return name;
  }

  private fresh(hint: string): string {
    let name: string;
    do name = `${hint}_${this.counter++}`;
    while (this.names.has(name));
    return name;
  }

  private claim(name: string): void {
    if (this.names.has(name)) throw new Error(`ONNX graph "${this.name}": value "${name}" is defined twice`);
    this.names.add(name);
  }
}

function checkSize(name: string, dims: readonly number[], length: number): void {
  const expected = dims.reduce((a, b) => a * b, 1);
  if (expected !== length) {
    throw new Error(`ONNX constant "${name}": dims [${dims.join(', ')}] need ${expected} values, got ${length}`);
  }
}

function valueInfo(name: string, shape: readonly Dim[]): ValueInfoInit {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: DataType.FLOAT,
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

function attributeProto(name: string, attr: Attribute): Record<string, unknown> {
  switch (attr.kind) {
    case 'int':
      return { name, type: AttributeType.INT, i: attr.value };
    case 'float':
      return { name, type: AttributeType.FLOAT, f: attr.value };
    case 'ints':
      return { name, type: AttributeType.INTS, ints: [...attr.value] };
    case 'string':
      return { name, type: AttributeType.STRING, s: new TextEncoder().encode(attr.value) };
  }
}
