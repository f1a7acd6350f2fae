# Entry points; the logic lives in scripts/.
.PHONY: run test fmt clean-data deps install-extension

run:
	scripts/run.sh

test:
	scripts/test.sh

fmt:
	cargo fmt --all

deps:
	scripts/deps.sh

install-extension:
	scripts/install-extension.sh

# Stop the local clusters and delete their data, the generated secrets and test output.
clean-data:
	-scripts/pg-cluster.sh stop .sluice/data
	-scripts/pg-cluster.sh stop .sluice/test-data
	rm -rf .sluice
