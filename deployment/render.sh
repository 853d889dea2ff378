#!/usr/bin/env bash
# Fills the deployment template with the variables below (all required) and prints the manifest.
# Only these names are substituted, so IoT Edge's own `$upstream`, `$edgeAgent` and `$edgeHub` stay.
#   REGISTRY_ADDRESS=myacr.azurecr.io REGISTRY_USERNAME=… REGISTRY_PASSWORD=… PUMPWATCH_VERSION=0.1.0 \
#   SENSOR_IMAGE=myacr.azurecr.io/pumpsensor:1.0 PUMPWATCH_BLOB_SAS_URL='https://…' PUMPWATCH_STATUS_TOKEN=… \
#   deployment/render.sh > deployment.json
# Needs envsubst, and node with this checkout built (npm ci && npm run build) for the SAS URL's check.
set -euo pipefail
vars=(REGISTRY_ADDRESS REGISTRY_USERNAME REGISTRY_PASSWORD PUMPWATCH_VERSION SENSOR_IMAGE PUMPWATCH_BLOB_SAS_URL PUMPWATCH_STATUS_TOKEN)
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
# The agent refuses a PUMPWATCH_BLOB_SAS_URL that names no container (an account SAS URL), has no
# sig, or is plain http:// to Azure (exit 2 at start): rendered, it crash-looped every gateway of the
# deployment. The agent's own check is run here (node and this checkout built, as the check needs
# the Blob SDK), with the URL in the environment only.
checker="$(dirname "$0")/../dist/agent/check-sas-url.js"
if ! command -v node >/dev/null 2>&1 || [ ! -f "$checker" ]; then
  echo "render.sh: cannot check PUMPWATCH_BLOB_SAS_URL as the agent will: this needs node (20 or later) and this checkout built (npm ci && npm run build)" >&2
  exit 2
fi
if ! refusal=$(node "$checker" 2>&1); then
  echo "render.sh: $refusal" >&2
  exit 2
fi
list=$(printf '${%s} ' "${vars[@]}")
envsubst "$list" < "$(dirname "$0")/pumpwatch.deployment.template.json"
