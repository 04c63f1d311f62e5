#!/usr/bin/env bash
# Regenerates Tests/Fixtures/clip-tiny with the pinned reference stack (by hand; CI never runs it).
# Needs Python 3.11 and PyPI: a virtual environment is made under ${CLIP_REFERENCE_VENV:-/tmp/clip-reference}.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${CLIP_REFERENCE_VENV:-/tmp/clip-reference}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r scripts/clip-fixtures/requirements.txt
# The original CLIP vocabulary ships inside open-clip-torch's wheel; only that file is used.
wheel_dir=$(mktemp -d)
trap 'rm -rf "$wheel_dir"' EXIT
"$venv/bin/pip" download -q --no-deps -d "$wheel_dir" open-clip-torch==3.3.0
"$venv/bin/python" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('open_clip/bpe_simple_vocab_16e6.txt.gz', sys.argv[2])" \
    "$wheel_dir"/open_clip_torch-*.whl "$wheel_dir"
"$venv/bin/python" scripts/clip-fixtures/make_fixtures.py --bpe "$wheel_dir/open_clip/bpe_simple_vocab_16e6.txt.gz"
