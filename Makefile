# Shortcuts for the scripts the README documents. The scripts work without make.
.PHONY: setup run run-gcp-local run-distributed test build format lint model bench-clip bench-search bench-metadata bench-qdrant bench-pgvector sanitize tsan images terraform-checks deploy

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

bench-metadata:
	Benchmarks/metadata-stores.sh

bench-qdrant:
	scripts/bench-qdrant.sh

bench-pgvector:
	scripts/bench-pgvector.sh

bench-clip:
	scripts/bench-clip.sh

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
