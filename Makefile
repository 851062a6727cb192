# Two commands do everything on a fresh machine with Python >= 3.10 and make:
#   make tour   set up .venv and run the tour (shapes, costs, figures)
#   make test   set up .venv and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.minswin-installed

.PHONY: tour test bench notebooks torch clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	@# torch is a test oracle only (never a dependency of minswin): the CPU build is installed
	@# where the machine offers it, otherwise the oracle tests are skipped with a reason
	-$(BIN)/python -m pip install -q "torch==2.13.0+cpu" 2>/dev/null || \
	  echo "minswin: no CPU torch here; PyTorch oracle tests will be skipped (make torch)"
	@# timm and torchvision: the Swin V2 oracles (tests/test_v2_oracle.py), test-only as well
	-$(BIN)/python -m pip install -q "torchvision==0.28.0+cpu" "timm==1.0.31" 2>/dev/null || \
	  echo "minswin: no timm/torchvision here; the Swin V2 oracle tests will be skipped"
	touch $(STAMP)

tour: $(STAMP)
	MPLBACKEND=Agg $(BIN)/minswin tour

test: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_swin.py

notebooks: $(STAMP)
	$(BIN)/python -m pip install -q jupytext
	$(BIN)/jupytext --to ipynb tutorials/*.py

torch: $(STAMP)
	$(BIN)/python -m pip install torch --index-url https://download.pytorch.org/whl/cpu

clean:
	rm -rf $(VENV) minswin-figures .pytest_cache
