#!/usr/bin/env bash
# Install the Debian/Ubuntu packages the project needs, only those missing.
#   scripts/ensure-system.sh run    -> redis-server, python3 venv support, Node.js + npm
#   scripts/ensure-system.sh test   -> the same, plus chromium (the editor check in a real n8n), openssl (TLS tests)
#                                      redis-cli (creates the test cluster) and postgresql (n8n queue mode: main + worker)
#                                      and prometheus + promtool (the alert rules and dashboard queries in a real Prometheus)
set -euo pipefail
mode="${1:-run}"
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v make >/dev/null 2>&1 || missing+=(make)
if [ "$mode" = "test" ]; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  # n8n queue-mode tests: main and worker share a PostgreSQL database (a cluster the tests create)
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
  command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
  # tests/test_prometheus_real.py: promtool checks the rules, a Prometheus it starts evaluates them
  { command -v prometheus && command -v promtool; } >/dev/null 2>&1 || missing+=(prometheus)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing: ${missing[*]}. This is not a Debian/Ubuntu system: install them with your package manager" >&2
  echo "(Redis >= 7.0, Python >= 3.11 with venv, Node.js >= 20 with npm)." >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "Missing: ${missing[*]}. Run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
echo "Installing missing system packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian starts a system redis-server on 6379 after install; the project never uses it.
# Debian's prometheus package enables a system Prometheus on :9090 (all interfaces) and starts it
# where services may start; the tests start their own on free loopback ports: stop and disable it.
if [[ " ${missing[*]} " == *" prometheus "* ]]; then
  if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/prometheus ]; then
    $SUDO service prometheus stop >/dev/null 2>&1 || true
    $SUDO update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
fi
