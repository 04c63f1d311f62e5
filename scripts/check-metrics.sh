#!/usr/bin/env bash
# Starts the emulator (debug build) and checks its GET /metrics with prometheus_client's parser
# (scripts/check-metrics.py): the request and pipeline counts move by exactly what a scripted session did.
# Needs the test virtual environment (scripts/setup.sh --test makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${TEST_VENV:-.build-test/venv}
. scripts/lib/emulator.sh
# The tests' tiny CLIP model: text queries are embedded, so the query cache is used.
start_emulator LOG_LEVEL=warning EMBEDDING_PROVIDER=clip CLIP_MODEL_DIR="$PWD/Tests/Fixtures/clip-tiny"
echo "==> Checking $emulator_base/metrics with prometheus_client's parser"
"$venv/bin/python" scripts/check-metrics.py "$emulator_base"
