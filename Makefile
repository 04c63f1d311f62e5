# Shortcuts for the scripts the README documents. The scripts work without make.
.PHONY: setup run run-gcp-local run-distributed test build format lint model bench-clip bench-search bench-duplicates bench-metadata \
	bench-qdrant bench-pgvector bench-image bench-cold-start bench-footprint bench-cloud-topology bench-quick soak drill \
	check-docs sanitize tsan images terraform-checks deploy

setup:
	scripts/setup.sh

run:
	scripts/run-emulator.sh

run-gcp-local:
	scripts/run-gcp-local.sh

run-distributed:
	scripts/run-distributed.sh

test:
	scripts/test.sh

model:
	scripts/fetch-model

bench-search:
	scripts/bench-search.sh

bench-duplicates:
	scripts/bench-duplicates.sh

bench-metadata:
	Benchmarks/metadata-stores.sh

bench-qdrant:
	scripts/bench-qdrant.sh

bench-pgvector:
	scripts/bench-pgvector.sh

bench-clip:
	scripts/bench-clip.sh

bench-image:
	scripts/bench-image.sh

bench-cold-start:
	Benchmarks/cold-start.sh

bench-footprint:
	scripts/bench-footprint.sh

bench-cloud-topology:
	Benchmarks/cloud-topology.sh

# Every documented benchmark in its quick mode (the smallest sizes, one short round): does it run?
soak:
	scripts/bench-soak.sh

drill:
	scripts/drill.sh

bench-quick:
	python3 scripts/check-documented-commands.py --only "make bench-"

# Every shell block of the documentation, as scripts/test.sh runs them.
check-docs:
	python3 scripts/check-documented-commands.py

sanitize:
	scripts/sanitize.sh

tsan:
	scripts/tsan.sh

images:
	scripts/images.sh

terraform-checks:
	scripts/terraform-checks.sh

deploy:
	deployment/deploy.sh --build --deploy

build:
	swift build

format:
	swift format format --in-place --recursive Package.swift Runtime Functions Tests Benchmarks

lint:
	swift format lint --strict --recursive Package.swift Runtime Functions Tests Benchmarks
