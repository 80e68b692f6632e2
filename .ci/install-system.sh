#!/usr/bin/env bash
# Installs the system packages the tests need on Debian 12: Mesa's lavapipe Vulkan driver from
# bookworm-backports (Dawn rejects bookworm's own Mesa 22.3) and Chromium (SwiftShader WebGPU for
# the browser tests). The backports URI is copied from the machine's own apt configuration.
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
need_update=1
if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '/^deb / && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  if [ -z "$uri" ]; then echo "install-system: cannot find a Debian mirror URI in the apt configuration" >&2; exit 1; fi
  echo "deb $uri bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/backports.list >/dev/null
fi
have_mesa() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -qE '^(2[4-9]|[3-9][0-9])\.'; }
if have_mesa && command -v chromium >/dev/null; then echo "install-system: mesa-vulkan-drivers and chromium already present"; exit 0; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium libvulkan1 >/dev/null
dpkg-query -W mesa-vulkan-drivers chromium
