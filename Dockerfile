# syntax=docker/dockerfile:1
# PumpWatch agent (and trainer) image: an Azure IoT Edge module.
#   docker build -t pumpwatch:0.1.0 .
# Stages: `build` compiles TypeScript with the dev dependencies; `deps` installs the production
# dependencies only (native modules built there, for the same Debian as the runtime); the runtime
# stage is the slim image with nothing but dist/, the production node_modules, the bundled model
# and the technician page's static files.
ARG NODE_VERSION=26

FROM node:${NODE_VERSION}-trixie AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY agent ./agent
COPY inference ./inference
COPY buffer ./buffer
COPY sync ./sync
COPY lib ./lib
COPY trainer ./trainer
COPY bench ./bench
# tsc, then dist/build-info.json: the id of these sources (lib/build-info.ts), which the agent and
# trainer report as 0.1.0+<12 hex>; .dockerignore leaves out what the id leaves out (Markdown).
RUN npm run build

FROM node:${NODE_VERSION}-trixie AS deps
WORKDIR /src
# onnxruntime-node's install script would download CUDA files where nvcc exists; the CPU binaries
# are in the package. .npmrc says so to npm (which warns that it will stop passing unknown keys),
# this variable says so to the script itself.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
# --ignore-scripts skips `prepare` (tsc is a dev dependency); the native modules are built next.
RUN npm ci --omit=dev --ignore-scripts \
 && npm rebuild better-sqlite3 onnxruntime-node \
 && npm cache clean --force
# Only what runs on this platform goes to the image: onnxruntime-node ships its binaries for every
# OS and CPU (about 220 MB for macOS, Windows and the other Linux CPU), better-sqlite3's build
# leaves the SQLite sources and object files next to its addon (about 25 MB). (/bin/sh: POSIX only;
# test/unit/deployment.test.ts runs this line on a mock tree.)
RUN keep="$(node -p 'process.platform + "/" + process.arch')" \
 && for d in node_modules/onnxruntime-node/bin/napi-v*/*/*; do case "$d" in */"$keep") ;; *) rm -rf "$d" ;; esac; done \
 && find node_modules/onnxruntime-node/bin -mindepth 1 -type d -empty -delete \
 && sq=node_modules/better-sqlite3 \
 && mv "$sq/build/Release/better_sqlite3.node" "$sq/better_sqlite3.node.keep" \
 && rm -rf "$sq/build" "$sq/deps" "$sq/src" \
 && mkdir -p "$sq/build/Release" \
 && mv "$sq/better_sqlite3.node.keep" "$sq/build/Release/better_sqlite3.node"
# A native module that does not load fails the build here, not the gateway (the runtime stage is
# the same Debian, slim).
RUN node -e "const D = require('better-sqlite3'); new D(':memory:').close(); require('onnxruntime-node')"

FROM node:${NODE_VERSION}-trixie-slim
# MALLOC_ARENA_MAX and the node flag of the ENTRYPOINT are the agent's (agent/node-flags.ts: less RSS).
# ORT_DISABLE_TELEMETRY: onnxruntime sends no usage telemetry, in the trainer's runs of the image too
# (inference/ort-telemetry.ts sets it as well, for a node started another way).
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    ORT_DISABLE_TELEMETRY=1 \
    PUMPWATCH_DATA_DIR=/data \
    PUMPWATCH_HTTP_HOST=0.0.0.0 \
    PUMPWATCH_HTTP_PORT=8080
WORKDIR /app
COPY --from=deps /src/package.json ./package.json
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY agent/assets/default-model.onnx ./agent/assets/default-model.onnx
COPY agent/page ./agent/page
# tini as PID 1 (Debian's package): it forwards IoT Edge's SIGTERM to node and reaps children. With
# node as PID 1 the kernel drops a signal node sends itself, so an agent whose housekeeping thread
# is held by a call the OS never answers (node's exit waits for it) could not end by the signal after
# its clean stop and waited for IoT Edge's SIGKILL (agent/cli-main.ts). `HostConfig.Init` in the
# manifest's createOptions would do the same, but IoT Edge has not always passed it on
# (Azure/iotedge#2328).
# The image's unprivileged `node` user (uid 1000) owns the data directory; IoT Edge mounts a volume there.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
# Liveness: /healthz names the failing part. agent/healthcheck.ts asks it at the agent's own
# address and port, over HTTPS when PUMPWATCH_HTTP_TLS_CERT_FILE is set (no curl in the slim image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "dist/agent/healthcheck.js"]
# IoT Edge sends SIGTERM; tini passes it to node, which stops cleanly (agent/cli-main.ts: exit 0).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--max-semi-space-size=8", "dist/agent/cli.js"]
