# Build, test and demo entry points. Every target installs what it needs itself.

PREFECT3_VERSION := 3.9.1
PREFECT2_VERSION := 2.20.27
PREFECT_AZURE_VERSION := 0.4.13
VENV3 := .venv/prefect3
VENV2 := .venv/prefect2
PYTHON ?= python3

export PREFECT_ACI_TEST_VENV3 := $(abspath $(VENV3))
export PREFECT_ACI_TEST_VENV2 := $(abspath $(VENV2))

.PHONY: all build test bench demo venv tools lint clean

all: build

build:
	cargo build --all-targets

# prefect-azure provides the Python worker's `azure-container-instance` type, so tests can
# create pools exactly as its users do. A stamp file per version makes the venvs reusable between runs and rebuilt when a
# pinned version changes.
$(VENV3)/.installed-$(PREFECT3_VERSION)-azure-$(PREFECT_AZURE_VERSION):
	rm -rf $(VENV3)
	$(PYTHON) -m venv $(VENV3)
	$(VENV3)/bin/pip install --quiet --disable-pip-version-check 'prefect==$(PREFECT3_VERSION)' 'prefect-azure==$(PREFECT_AZURE_VERSION)'
	touch $@

$(VENV2)/.installed-$(PREFECT2_VERSION):
	rm -rf $(VENV2)
	$(PYTHON) -m venv $(VENV2)
	$(VENV2)/bin/pip install --quiet --disable-pip-version-check 'prefect==$(PREFECT2_VERSION)'
	touch $@

venv: $(VENV3)/.installed-$(PREFECT3_VERSION)-azure-$(PREFECT_AZURE_VERSION) $(VENV2)/.installed-$(PREFECT2_VERSION)

# shellcheck and promtool (Debian package prometheus) for tests/deploy_checks/. Installs
# with apt-get only what is missing, and uses sudo when not root.
tools:
	@missing=""; \
	command -v shellcheck >/dev/null 2>&1 || missing="$$missing shellcheck"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
		echo "installing$$missing with apt-get"; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

test: venv tools lint
	cargo test --all-targets

# Scale benchmark against a real Prefect server and the simulating emulator; prints figures.
# Sizes: SCALE_BENCH_RUNS (default 50) and SCALE_BENCH_SECONDS (default 120).
bench: $(VENV3)/.installed-$(PREFECT3_VERSION)-azure-$(PREFECT_AZURE_VERSION)
	cargo bench --bench scale

demo: $(VENV3)/.installed-$(PREFECT3_VERSION)-azure-$(PREFECT_AZURE_VERSION)
	bash deploy/demo/demo.sh

clean:
	cargo clean
	rm -rf .venv
