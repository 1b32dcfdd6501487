#!/usr/bin/env bash
# Stops the operator (scales its Deployment to 0) and keeps the release, the CRDs and every experiment.
# Running workers are not touched; nothing is reconciled until ./setup.sh brings the operator back.
#
# Environment: RELEASE_NAME (default arena-operator), NAMESPACE (default arena-system).
set -euo pipefail

RELEASE_NAME="${RELEASE_NAME:-arena-operator}"
NAMESPACE="${NAMESPACE:-arena-system}"

kubectl scale deployment -n "$NAMESPACE" -l "app.kubernetes.io/instance=${RELEASE_NAME}" --replicas=0
echo "The operator of release ${RELEASE_NAME} is scaled to 0. ./setup.sh starts it again; ./teardown.sh removes it."
