# lightning-ex2: the two quick-start commands and friends.
#   make demo   - a small run on a built-in default; writes under logs/
#   make test   - lint + format check + the test suite + the documentation site
#   make test-portable - the kernel tests again on torch's baseline (non-AVX) kernels
#   make docs   - the documentation site (mkdocs build --strict) into logs/site/
#   make gpu-check - on a CUDA machine: device tests, quick start and GAN throughput on the GPU
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# pytest workers of `make test` (one per core of the 2-core CI machine)
TEST_WORKERS ?= 2
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-8)

.PHONY: install demo compare bench bench-all gpu-check test test-portable test-fast lint format bench clean docs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: a CPU wheel of 2.13.0 lies on disk; unpinned would fetch CUDA.
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev,docs]"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

QUICKSTART := logs/quickstart
demo: $(STAMP)
	rm -rf $(QUICKSTART)
	$(BIN)/lightning-ex2 fit --config configs/quickstart.yaml
	$(BIN)/lightning-ex2 sample --config configs/quickstart.yaml \
	    --ckpt_path $(QUICKSTART)/fit/checkpoints/last.ckpt --output_dir $(QUICKSTART)/sample \
	    --n_steps 300
	@echo; cat $(QUICKSTART)/sample/summary.json
	@echo "samples, summary and plots: $(QUICKSTART)/sample/   TensorBoard: tensorboard --logdir logs"

compare: $(STAMP)
	$(BIN)/python -m lightning_ex2.lightning.demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# warnings are errors (strict); the API reference is generated from the package tree
docs: $(STAMP)
	DISABLE_MKDOCS_2_WARNING=true PYTHONPATH=$(CURDIR) $(BIN)/mkdocs build --strict -d logs/site
	@echo "site: logs/site/index.html   (live preview: $(BIN)/mkdocs serve)"

test: lint docs
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not ddp" --durations=25 --doctest-modules \
	    tests lightning_ex2
	# multi-process DDP tests in their own pytest process (ddp re-launches the command line)
	$(BIN)/python -m pytest -q -m ddp
	$(MAKE) --no-print-directory test-portable

# The run above uses the CPU's best kernels (AVX2 or AVX-512); results must not hang on
# them: the kernel and sampler-module tests again on torch's baseline kernels (less the
# module's 2-minute flow-training statistics test).
test-portable: $(STAMP)
	ATEN_CPU_CAPABILITY=default $(BIN)/python -m pytest -q -m "not ddp" tests/kernels \
	    tests/lightning/test_module.py -k "not test_flex2mcmc_recovers_mode_weights_mala_does_not"

bench: $(STAMP)
	$(BIN)/python benchmarks/floor.py

bench-all:  # floor, reference (ex2mcmc==0.0.4) and NUTS; makes its own venvs; ~10-25 min
	bash benchmarks/run_all.sh

gpu-check: $(STAMP)  # <= 8 min on a CUDA machine; writes benchmarks/out/gpu.json and gpu.md
	$(BIN)/python benchmarks/gpu_check.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
