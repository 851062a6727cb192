# Two commands do everything on a fresh machine with Python >= 3.10 and make:
#   make tour   set up .venv and run the tour (shapes, costs, figures)
#   make test   set up .venv and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.minswin-installed

.PHONY: tour test bench notebooks torch clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "minswin: creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "minswin: installing minswin and its test tools into $(VENV)"
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e ".[test]"
	@# torch is a test oracle only (never a dependency of minswin): the CPU build is installed
	@# where the machine offers it, otherwise the oracle tests are skipped with a reason
	@if $(BIN)/python -m pip install -q "torch==2.13.0+cpu" 2>/dev/null; then \
	  echo "minswin: CPU torch installed (the PyTorch oracle tests will run)"; \
	else \
	  echo "minswin: no CPU torch here; PyTorch oracle tests will be skipped (make torch)"; \
	fi
	@touch $(STAMP)

tour: $(STAMP)
	MPLBACKEND=Agg $(BIN)/minswin tour

test: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_swin.py

# executed notebooks, outputs and figures included, next to the scripts (git-ignored):
# open tutorials/NN_*.ipynb in VS Code, or with `pip install jupyterlab; jupyter lab tutorials/`
notebooks: $(STAMP)
	@$(BIN)/python scripts/make_notebooks.py

torch: $(STAMP)
	$(BIN)/python -m pip install torch --index-url https://download.pytorch.org/whl/cpu

clean:
	rm -rf $(VENV) minswin-figures .pytest_cache
