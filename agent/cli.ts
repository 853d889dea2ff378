#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=8
// The shebang sets AGENT_ENV and passes AGENT_NODE_FLAGS (agent/node-flags.ts: why); `env -S`
// splits them (GNU coreutils 8.30+, the BSD and macOS env). The Dockerfile sets the same.
//
// The entry point: nothing but early.ts, then the command line (cli-main.ts) by a dynamic import.
// Node loads and links a module's whole static import graph before it evaluates any of it: with
// cli-main's imports (onnxruntime, the Blob SDK, the IoT SDK…) here, early.ts's SIGTERM handler
// came only after the 0.3-1.4 s they take to load, and a SIGTERM in that time ended the process by
// the signal (143; as PID 1 in the container, ignored until IoT Edge's SIGKILL). Now it is caught
// once node itself has started and these two small modules are read; the rest loads after.
import './early.js';

await import('./cli-main.js');
