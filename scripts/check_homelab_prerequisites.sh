#!/usr/bin/env bash
# `make homelab` runs this before building anything: the homelab needs a running Docker
# daemon and k3d (ADR-013 "Home Lab (K3d + Flannel)"). One line per missing piece, saying
# how to get it and what works without it.
set -u
without="; \`make preview\` works without it"
if ! command -v docker >/dev/null 2>&1; then
  echo "homelab: docker not found: install Docker Engine (https://docs.docker.com/engine/install/)$without" >&2
  exit 1
fi
if ! docker info >/dev/null 2>&1; then
  echo "homelab: docker is installed but its daemon is not running (or not yours): start it, e.g. \`sudo systemctl start docker\`$without" >&2
  exit 1
fi
if ! command -v k3d >/dev/null 2>&1; then
  echo "homelab: k3d not found: install it (https://k3d.io, e.g. \`curl -s https://raw.githubusercontent.com/k3d-io/k3d/main/install.sh | bash\`)$without" >&2
  exit 1
fi
