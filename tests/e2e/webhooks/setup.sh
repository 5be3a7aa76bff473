#!/usr/bin/env bash
# Installs the webhook tests' JavaScript tool, the Standard Webhooks reference implementation
# (npm standardwebhooks), from the committed lockfile. Node comes from deploy/packages.txt
# (nodejs); Debian ships npm as a package of its own, installed here when missing (some Node
# packages, nodesource's among them, bundle it). Idempotent and offline once installed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then as_root=(); else as_root=(sudo); fi
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends npm
fi
cd "$here"
# Installed already at the locked version: nothing to do (and no network).
if node -e '
  const lock = require("./package-lock.json").packages["node_modules/standardwebhooks"].version;
  const have = require("./node_modules/standardwebhooks/package.json").version;
  process.exit(lock === have ? 0 : 1);' 2>/dev/null; then
  exit 0
fi
npm ci --no-audit --no-fund --prefer-offline --loglevel=error
