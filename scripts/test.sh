#!/usr/bin/env bash
# Installs what is missing, checks formatting, builds everything and runs every test: the Swift
# tests, then the quick part of the failure drills on both topologies, then schemathesis against
# the emulator's own OpenAPI document, then GET /metrics read by prometheus_client's parser, then the checks on
# terraform/ (fmt, checkov, the tests over the parsed HCL), then every shell block of the
# documentation (the first session, each benchmark in its quick mode).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
echo "==> Checking formatting (swift format lint --strict)"
swift format lint --strict --recursive Package.swift Runtime Functions Tests Benchmarks
echo "==> Building every product and test target"
swift build --build-tests
echo "==> Running every test (scripts/test-servers.sh starts the servers the contract suites need)"
scripts/test-servers.sh swift test --skip-build
echo "==> Failure drills, the quick part (scripts/drill.sh --quick)"
BIN_DIR=$(swift build --show-bin-path) scripts/drill.sh --quick
scripts/schemathesis.sh
scripts/check-metrics.sh
scripts/terraform-checks.sh
echo "==> Running the documentation's commands (scripts/check-documented-commands.py)"
python3 scripts/check-documented-commands.py
