#!/bin/sh
# Set up the benchmarks (bench/README in docs/performance.md):
#  1. the peers they compare against, from Debian (not project dependencies):
#     curl, swaks, openssl, GNU time (peak RSS) and hyperfine (optional);
#  2. bench/.venv: smtpshell installed as a user would have it (its own modules compiled,
#     no editable-install import hook) plus pytest and pytest-xdist for the plugin run.
# Run as root or with sudo on Debian/Ubuntu:  sh bench/setup.sh
set -e
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq curl swaks openssl time >/dev/null
$SUDO apt-get install -y -qq hyperfine >/dev/null 2>&1 || echo "hyperfine: not available (optional)"
PYTHON=${PYTHON:-python3}
[ -x bench/.venv/bin/python ] || "$PYTHON" -m venv bench/.venv
# "compat" editable mode: a plain path in a .pth file, so the venv always runs this
# checkout without the import hook that a default editable install adds to every start.
bench/.venv/bin/pip install -q -e . --config-settings editable_mode=compat
bench/.venv/bin/pip install -q pytest pytest-xdist
for tool in curl swaks openssl /usr/bin/time hyperfine; do
    printf '%-14s %s\n' "$tool" "$(command -v "$tool" || echo MISSING)"
done
echo "bench/.venv: $(bench/.venv/bin/python --version)"
