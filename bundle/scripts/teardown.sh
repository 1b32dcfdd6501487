#!/usr/bin/env bash
# Removes the Arena operator release. The CRDs (and with them every experiment, deployment, training cluster and
# resource class) stay unless --delete-crds is given.
#
#   ./teardown.sh [--delete-crds] [--delete-namespace]
#
# Environment: RELEASE_NAME (default arena-operator), NAMESPACE (default arena-system), FULLNAME (the chart's
# fullnameOverride, if you set one).
set -euo pipefail

RELEASE_NAME="${RELEASE_NAME:-arena-operator}"
NAMESPACE="${NAMESPACE:-arena-system}"
# The chart's naming rule: the release name when it already says arena-operator, else <release>-arena-operator.
if [[ -z "${FULLNAME:-}" ]]; then
  if [[ "$RELEASE_NAME" == *arena-operator* ]]; then FULLNAME="$RELEASE_NAME"; else FULLNAME="${RELEASE_NAME}-arena-operator"; fi
fi
delete_crds=0
delete_namespace=0
for arg in "$@"; do
  case "$arg" in
    --delete-crds) delete_crds=1 ;;
    --delete-namespace) delete_namespace=1 ;;
    -h | --help)
      sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) echo "unknown option: $arg (see --help)" >&2; exit 2 ;;
  esac
done

if helm status "$RELEASE_NAME" -n "$NAMESPACE" >/dev/null 2>&1; then
  helm uninstall "$RELEASE_NAME" -n "$NAMESPACE" --wait
else
  echo "release ${RELEASE_NAME} is not installed in ${NAMESPACE}"
fi

# Hook objects that a failed upgrade or helm test left behind (successful hooks delete themselves).
for kind in pod job configmap serviceaccount role rolebinding; do
  kubectl delete "$kind" -n "$NAMESPACE" -l "app.kubernetes.io/instance=${RELEASE_NAME},app.kubernetes.io/name=arena-operator" \
    --ignore-not-found --wait=false >/dev/null
done
for kind in clusterrole clusterrolebinding; do
  kubectl delete "$kind" -l "app.kubernetes.io/instance=${RELEASE_NAME},app.kubernetes.io/name=arena-operator" --ignore-not-found >/dev/null
done

# What the operator created for itself, which Helm does not know about: its webhook configurations and serving
# certificates, its signing key, the status API token it made when values gave none (an existingSecret of the
# admin's is left alone: it does not carry the operator's label), and its leader-election Lease.
kubectl delete validatingwebhookconfiguration,mutatingwebhookconfiguration "$FULLNAME" --ignore-not-found >/dev/null
kubectl delete secret -n "$NAMESPACE" "${FULLNAME}-webhook-tls" "${FULLNAME}-signing-key" --ignore-not-found >/dev/null
kubectl delete secret -n "$NAMESPACE" -l app.kubernetes.io/managed-by=arena-operator,app.kubernetes.io/component=status-api --ignore-not-found >/dev/null
# The API certificate it made (an administrator's apiTls.existingSecret carries no operator label and stays), and
# the CA ConfigMaps it kept in worker namespaces.
kubectl delete secret -n "$NAMESPACE" -l app.kubernetes.io/managed-by=arena-operator,app.kubernetes.io/component=api --ignore-not-found >/dev/null
kubectl delete configmap --all-namespaces --field-selector "metadata.name=${FULLNAME}-ca" \
  -l app.kubernetes.io/managed-by=arena-operator,app.kubernetes.io/component=report-ca --ignore-not-found >/dev/null
kubectl delete lease.coordination.k8s.io -n "$NAMESPACE" arena-operator --ignore-not-found >/dev/null

if (( delete_crds )); then
  echo "Deleting the arena.agilerl.com CRDs and every object of their kinds..."
  kubectl delete crd trainingclusters.arena.agilerl.com resourceclasses.arena.agilerl.com \
    experiments.arena.agilerl.com deployments.arena.agilerl.com --ignore-not-found --wait=true
else
  echo "The arena.agilerl.com CRDs and their objects are kept (./teardown.sh --delete-crds removes them)."
fi

if (( delete_namespace )); then
  kubectl delete namespace "$NAMESPACE" --ignore-not-found --wait=true
fi
echo "Teardown of ${RELEASE_NAME} done."
