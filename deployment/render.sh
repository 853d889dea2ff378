#!/usr/bin/env bash
# Fills the deployment template with the variables below (all required) and prints the manifest.
# Only these names are substituted, so IoT Edge's own `$upstream`, `$edgeAgent` and `$edgeHub` stay.
#   REGISTRY_ADDRESS=myacr.azurecr.io REGISTRY_USERNAME=… REGISTRY_PASSWORD=… PUMPWATCH_VERSION=0.1.0 \
#   SENSOR_IMAGE=myacr.azurecr.io/pumpsensor:1.0 PUMPWATCH_BLOB_SAS_URL='https://…' PUMPWATCH_STATUS_TOKEN=… \
#   PUMPWATCH_PUBLISH_IP=192.168.10.5 deployment/render.sh > deployment.json
# Optional: EDGEHUB_PUBLISH_PORTS=<address> publishes edgeHub's 443, 5671 and 8883 there (for
# downstream IoT devices; unset: not published), PUMPWATCH_SAS_MAX_DAYS (default 365) the longest
# lifetime of the SAS. deployment/README.md, step 3, says why.
# Needs envsubst, and node with this checkout built (npm ci && npm run build) for the SAS URL's check.
set -euo pipefail
vars=(REGISTRY_ADDRESS REGISTRY_USERNAME REGISTRY_PASSWORD PUMPWATCH_VERSION SENSOR_IMAGE PUMPWATCH_BLOB_SAS_URL PUMPWATCH_STATUS_TOKEN PUMPWATCH_PUBLISH_IP)
if ! command -v envsubst >/dev/null 2>&1; then
  echo "render.sh: envsubst is missing (Debian/Ubuntu: apt-get install gettext-base; macOS: brew install gettext)" >&2
  exit 2
fi
for v in "${vars[@]}"; do
  if [ -z "${!v:-}" ]; then echo "render.sh: $v is not set" >&2; exit 2; fi
  # Values are pasted into JSON strings: a quote, a backslash or a control character would break
  # the manifest (the value itself is never printed: some are secrets).
  if [[ "${!v}" == *'"'* || "${!v}" == *\\* || "${!v}" =~ [[:cntrl:]] ]]; then
    echo "render.sh: $v contains a \", a backslash or a control character, which a JSON string cannot hold as is" >&2
    exit 2
  fi
  # None of these values has a space at either end (an image reference, a name, a URL, a token):
  # one pasted with it rendered without complaint, and the module then failed on the gateway
  # (the agent refuses a blank status token; a registry refuses the image name).
  if [[ "${!v}" =~ ^[[:space:]] || "${!v}" =~ [[:space:]]$ ]]; then
    echo "render.sh: $v begins or ends with a space, or is only spaces: set it without them" >&2
    exit 2
  fi
done
checker="$(dirname "$0")/../dist/agent/check-sas-url.js"
if ! command -v node >/dev/null 2>&1 || [ ! -f "$checker" ]; then
  echo "render.sh: cannot check PUMPWATCH_BLOB_SAS_URL as the agent will: this needs node (20 or later) and this checkout built (npm ci && npm run build)" >&2
  exit 2
fi
# Docker publishes a port on every interface unless told an address, past the host's firewall: the
# status port (data, POST /readings) was reachable from the cellular side. The address is a choice
# (the plant-side interface's), every interface only when asked for, with a warning.
ip_address() {
  local name=$1 value=$2
  # 0 when not an IP address, 2 for an address that means every interface (0.0.0.0, and :: however
  # it is spelt: 0:0:0:0:0:0:0:0, ::ffff:0.0.0.0), else 1.
  local kind
  kind=$(ADDRESS="$value" node -e '
    const a = process.env.ADDRESS, v = require("node:net").isIP(a);
    const host = v === 6 ? new URL(`http://[${a}]/`).hostname : a;
    console.log(v === 0 ? 0 : ["0.0.0.0", "[::]", "[::ffff:0:0]"].includes(host) ? 2 : 1);')
  if [[ "$kind" == 0 ]]; then
    echo "render.sh: $name=$value is not an IP address: give the address of the gateway's interface to publish on (its plant-side one), or 0.0.0.0 for every interface" >&2
    exit 2
  fi
  if [[ "$kind" == 2 ]]; then
    echo "render.sh: warning: $name=$value publishes $3 on every interface of the gateway, the cellular side included (Docker's published ports bypass the host firewall)" >&2
  fi
}
ip_address PUMPWATCH_PUBLISH_IP "$PUMPWATCH_PUBLISH_IP" "the status port 8080"
# edgeHub's ports serve downstream IoT devices only: the modules reach edgeHub over the Docker
# network IoT Edge makes (deployment/README.md). Published only when an address is given.
EDGEHUB_CREATE_OPTIONS='{}'
if [ -n "${EDGEHUB_PUBLISH_PORTS:-}" ]; then
  ip_address EDGEHUB_PUBLISH_PORTS "$EDGEHUB_PUBLISH_PORTS" "edgeHub's ports 443, 5671 and 8883"
  q='\"' # a quote inside the createOptions string of the manifest
  bind() { printf '%s' "[{${q}HostIp${q}:${q}${EDGEHUB_PUBLISH_PORTS}${q},${q}HostPort${q}:${q}$1${q}}]"; }
  EDGEHUB_CREATE_OPTIONS="{${q}HostConfig${q}:{${q}PortBindings${q}:{${q}5671/tcp${q}:$(bind 5671),${q}8883/tcp${q}:$(bind 8883),${q}443/tcp${q}:$(bind 443)}}}"
fi
export EDGEHUB_CREATE_OPTIONS
# The agent refuses a PUMPWATCH_BLOB_SAS_URL that names no container (an account SAS URL), has no
# sig, or is plain http:// to Azure (exit 2 at start): rendered, it crash-looped every gateway of the
# deployment. The agent's own check is run here (node and this checkout built, as the check needs
# the Blob SDK), with the URL in the environment only.
# With --deployment it also refuses what a new manifest must not carry (the agent only warns of it):
# a SAS granting more than the sync uses (read, create, write), expired or living longer than
# PUMPWATCH_SAS_MAX_DAYS, and a status token shorter than 32 characters.
if ! refusal=$(node "$checker" --deployment 2>&1); then
  printf '%s\n' "$refusal" | sed 's/^/render.sh: /' >&2
  exit 2
fi
list=$(printf '${%s} ' "${vars[@]}" EDGEHUB_CREATE_OPTIONS)
envsubst "$list" < "$(dirname "$0")/pumpwatch.deployment.template.json"
