#!/usr/bin/env bash
# Builds and pushes both images tagged with the git commit (never :latest), points the worker at the
# new runtime image, and with --deploy rolls the control plane out on that exact image.
#
#   scripts/deploy-images.sh            # build + push both, stage FLY_MACHINE_IMAGE
#   scripts/deploy-images.sh --deploy   # … then fly deploy the control plane (rolling)
#
# Environment: CONTROL_APP (cloud-execution), RUNTIME_APP (cloud-execution-runtime), GIT_SHA (default:
# git rev-parse HEAD), ALLOW_DIRTY=1 to build from a tree with uncommitted changes (the tag would then
# name a commit that is not what the image holds: avoid it for production). docs/deploy.md, step 6.
set -euo pipefail

cd "$(dirname "$0")/.."
control_app="${CONTROL_APP:-cloud-execution}"
runtime_app="${RUNTIME_APP:-cloud-execution-runtime}"
deploy=false
case "${1:-}" in
  "") ;;
  --deploy) deploy=true ;;
  *) echo "usage: scripts/deploy-images.sh [--deploy]" >&2; exit 64 ;;
esac

if [ -z "${GIT_SHA:-}" ]; then
  if [ -n "$(git status --porcelain)" ] && [ "${ALLOW_DIRTY:-}" != "1" ]; then
    echo "uncommitted changes: commit first (or ALLOW_DIRTY=1), so the tag names what the image holds" >&2
    exit 1
  fi
  GIT_SHA="$(git rev-parse HEAD)"
fi
if ! [[ "$GIT_SHA" =~ ^[0-9a-f]{7,40}$ ]]; then
  echo "GIT_SHA must be a git commit id (hex), got: $GIT_SHA" >&2
  exit 64
fi

runtime_image="registry.fly.io/${runtime_app}:${GIT_SHA}"
control_image="registry.fly.io/${control_app}:${GIT_SHA}"

echo "[deploy-images] runtime image ${runtime_image}"
fly deploy --config fly.runtime.toml --app "$runtime_app" --build-only --push \
  --image-label "$GIT_SHA" --build-arg "GIT_SHA=$GIT_SHA"

echo "[deploy-images] control plane image ${control_image}"
fly deploy --config fly.control-plane.toml --app "$control_app" --build-only --push \
  --image-label "$GIT_SHA" --build-arg "GIT_SHA=$GIT_SHA"

# Staged: applied by the next deploy. New machines get this image; machines already running keep
# theirs until they are moved deliberately (docs/deploy.md, "Updating").
echo "[deploy-images] FLY_MACHINE_IMAGE=${runtime_image} (staged on ${control_app})"
fly secrets set --stage --app "$control_app" "FLY_MACHINE_IMAGE=${runtime_image}"

if [ "$deploy" = true ]; then
  echo "[deploy-images] rolling out ${control_image}"
  fly deploy --config fly.control-plane.toml --app "$control_app" --image "$control_image"
else
  echo "[deploy-images] done; deploy with:"
  echo "  fly deploy --config fly.control-plane.toml --app ${control_app} --image ${control_image}"
fi
