#!/usr/bin/env bash
# Starts the emulator (debug build) and checks its GET /metrics with prometheus_client's parser
# (scripts/check-metrics.py): the request counts move by exactly a scripted session's requests.
# Needs the test virtual environment (scripts/setup.sh --test makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${TEST_VENV:-.build-test/venv}
. scripts/lib/emulator.sh
start_emulator LOG_LEVEL=warning
echo "==> Checking $emulator_base/metrics with prometheus_client's parser"
"$venv/bin/python" scripts/check-metrics.py "$emulator_base"
