/**
 * Serialises a graph into ONNX ModelProto bytes. IR version 8 with the default-domain opset 17:
 * both load in onnxruntime-node 1.30. Metadata entries are written in key order, so the same
 * graph and metadata always give the same bytes.
 */
import type { GraphBuilder } from './graph.js';
import { ModelProto } from './proto.js';

export const IR_VERSION = 8;
export const OPSET_VERSION = 17;
export const PRODUCER_NAME = 'pumpwatch-trainer';

export interface EncodeOptions {
  metadata: Record<string, string>;
  producerVersion: string;
  docString?: string;
}

export function encodeModel(graph: GraphBuilder, options: EncodeOptions): Uint8Array {
  const model = {
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: OPSET_VERSION }],
    producer_name: PRODUCER_NAME,
    producer_version: options.producerVersion,
    doc_string: options.docString ?? '',
    graph: graph.toProto(),
    metadata_props: Object.keys(options.metadata)
      .sort()
      .map((key) => ({ key, value: options.metadata[key] as string })),
  };
  const invalid = ModelProto.verify(model);
  if (invalid !== null) throw new Error(`ONNX model is malformed: ${invalid}`);
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}
