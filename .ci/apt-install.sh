#!/usr/bin/env bash
# .ci/apt-install.sh PKG...: install the Debian packages among PKG that are not installed yet (nothing, and no
# `apt-get update`, when all are), with a lock timeout: other jobs on a shared machine may run apt too.
set -euo pipefail
missing=()
for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
[ ${#missing[@]} -gt 0 ] || exit 0
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
echo "apt-get install ${missing[*]}"
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
