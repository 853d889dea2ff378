#!/usr/bin/env bash
# Fills the deployment template with the variables below (all required) and prints the manifest.
# Only these names are substituted, so IoT Edge's own `$upstream`, `$edgeAgent` and `$edgeHub` stay.
#   REGISTRY_ADDRESS=myacr.azurecr.io REGISTRY_USERNAME=… REGISTRY_PASSWORD=… PUMPWATCH_VERSION=0.1.0 \
#   SENSOR_IMAGE=myacr.azurecr.io/pumpsensor:1.0 PUMPWATCH_BLOB_SAS_URL='https://…' PUMPWATCH_STATUS_TOKEN=… \
#   deployment/render.sh > deployment.json
set -euo pipefail
vars=(REGISTRY_ADDRESS REGISTRY_USERNAME REGISTRY_PASSWORD PUMPWATCH_VERSION SENSOR_IMAGE PUMPWATCH_BLOB_SAS_URL PUMPWATCH_STATUS_TOKEN)
for v in "${vars[@]}"; do
  if [ -z "${!v:-}" ]; then echo "render.sh: $v is not set" >&2; exit 2; fi
done
list=$(printf '${%s} ' "${vars[@]}")
envsubst "$list" < "$(dirname "$0")/pumpwatch.deployment.template.json"
