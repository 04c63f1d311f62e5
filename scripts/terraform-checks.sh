#!/usr/bin/env bash
# The checks on terraform/ that can run without Google Cloud: `terraform fmt -check`, checkov
# (offline, zero failed checks; deliberate skips are justified beside their resources) and the
# tests over the parsed HCL in terraform/tests (python-hcl2), which compare it with the code: the
# functions, the variables each binary reads, its secrets, and the URL map against the emulator's
# /openapi.json; and deploy.sh and seed as far as they run without Google Cloud. Run by
# scripts/test.sh; needs the debug build and the test virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${TEST_VENV:-.build-test/venv}

if command -v terraform >/dev/null; then
    echo "==> terraform fmt -check -recursive terraform"
    terraform fmt -check -recursive terraform
elif [ "${REQUIRE_TEST_SERVERS:-0}" = 1 ]; then
    echo "terraform-checks: terraform is not installed, so terraform fmt -check cannot run" >&2
    exit 1
else
    echo "==> terraform is not installed: terraform fmt -check left out"
fi

echo "==> checkov on terraform/ (offline)"
"$venv/bin/checkov" --directory terraform --framework terraform --skip-download --compact --quiet

echo "==> Tests over the parsed terraform (python-hcl2), against the code and the emulator's /openapi.json"
. scripts/lib/emulator.sh
start_emulator LOG_LEVEL=warning
"$venv/bin/python" -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1]).read())' \
    "$emulator_base/openapi.json" >"$emulator_data/openapi.json"
OPENAPI_DOCUMENT="$emulator_data/openapi.json" "$venv/bin/python" -m pytest -q -p no:cacheprovider terraform/tests
