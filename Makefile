# Shadow Cauldron: `make demo` and `make test` do all set-up on a fresh machine (Python 3.11+, make, PyPI).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build by default. GPU owners: `make demo TORCH_SPEC="torch==2.13.0 --index-url <your CUDA index>"`,
# or install torch in $(VENV) first and pass TORCH_SPEC=torch.
TORCH_SPEC ?= torch==2.13.0
# k-diffusion, the sampler code A1111 runs, is the reference of tests/providers/test_sampler_parity.py. Installed
# without its package requirements: they pull torchvision (which would replace the torch above) and training
# tools the samplers never import; the two they do need are in the dev extra.
KDIFFUSION_SPEC := k-diffusion==0.1.1.post1

.PHONY: install demo test lint typecheck security pytest bench clean

install: $(VENV)/.installed

PLUGINS := plugins/cauldron-comfyui plugins/cauldron-llm-tags

$(VENV)/.installed: pyproject.toml clients/pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	# The daemon's distribution was called "cauldrond" before "shadow-cauldron": a venv from then would load the
	# built-in plugins twice, as would its metadata left in this folder. (pip only warns when it is not installed.)
	$(BIN)/python -m pip uninstall --quiet --yes cauldrond
	rm -rf cauldrond.egg-info
	$(BIN)/python -m pip install --quiet -e ".[dev,ray]" -e ./clients $(addprefix -e ./,$(PLUGINS))
	$(BIN)/python -m pip install --quiet --no-deps $(KDIFFUSION_SPEC)
	touch $@

demo: install
	bash scripts/demo.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy cauldrond clients/cauldron_client plugins/cauldron-comfyui/cauldron_comfyui \
		plugins/cauldron-llm-tags/cauldron_llm_tags

security: install
	$(BIN)/bandit -q -c pyproject.toml -r cauldrond clients/cauldron_client plugins/cauldron-comfyui/cauldron_comfyui \
		plugins/cauldron-llm-tags/cauldron_llm_tags

# Two workers by default (PYTEST_WORKERS=0 runs in one process); each test module stays on one worker.
PYTEST_WORKERS ?= 2

pytest: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --cov --cov-report=term:skip-covered \
		--cov-fail-under=80

test: lint typecheck security pytest

bench: install
	for script in rpc_latency sweep_throughput overhead model_loads enqueue; do \
		$(BIN)/python bench/$$script.py || exit 1; done

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache .coverage
