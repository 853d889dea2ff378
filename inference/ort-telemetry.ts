/**
 * onnxruntime-node's Linux, macOS and Android builds (1.30 on) report usage to Microsoft: an event
 * per process and per session, sent to mobile.events.data.microsoft.com, with a device id and an
 * offline queue under $HOME/.cache/Microsoft/DeveloperTools/.onnxruntime (and, where HOME is
 * read-only, a coloured non-JSON warning in the agent's log). `ORT_DISABLE_TELEMETRY=1` turns all of
 * it off, but only when it is set before onnxruntime initialises: the native library reads it once
 * and keeps the answer for the process (microsoft/onnxruntime#27379). So this module only sets it,
 * and is imported before onnxruntime-node: first by the entry points (agent/early.ts,
 * trainer/cli.ts; ES modules are evaluated in the order they are imported) and ahead of
 * onnxruntime-node by the modules that import it. A value set by the operator is kept.
 */
process.env.ORT_DISABLE_TELEMETRY ??= '1';

export {};
