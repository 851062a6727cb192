# Two commands do everything on a fresh machine with Python >= 3.10 and make:
#   make tour   set up .venv and run the tour (shapes, costs, figures)
#   make test   set up .venv and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.minswin-installed

.PHONY: tour test bench notebooks torch clean gpu-check mutate

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "minswin: creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@$(BIN)/python -m pip install -q --upgrade pip
	@# torch is a test oracle only (never a dependency of minswin): the CPU build is installed
	@# where the machine offers it, otherwise the oracle tests are skipped with a reason
	@if $(BIN)/python -m pip install -q "torch==2.13.0+cpu" 2>/dev/null; then \
	  echo "minswin: CPU torch installed (the PyTorch oracle tests will run)"; \
	else \
	  echo "minswin: no CPU torch here; PyTorch oracle tests will be skipped (make torch)"; \
	fi
	@# the test extra's oracles (timm, which brings torchvision, and transformers) need torch:
	@# the one installed above is pinned, so that they do not replace it with a CUDA build
	@# (setuptools' UserWarning about editable installs is the same for everyone: not shown)
	@echo "minswin: installing minswin and its test tools into $(VENV)"
	@PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install -q -e ".[test]" \
	  $$($(BIN)/python -c \
	  "import torch; print('torch==' + torch.__version__)" 2>/dev/null)
	@touch $(STAMP)

tour: $(STAMP)
	MPLBACKEND=Agg $(BIN)/minswin tour

# the suite, then every CuPy test again on the strict CPU stand-in for CuPy (tests/cupy_standin.py)
test: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest -q
	MINSWIN_CUPY_STANDIN=1 MPLBACKEND=Agg $(BIN)/python -m pytest -q -m gpu

# on a machine with a GPU and CuPy (pip install -e ".[gpu-cuda12]"): one check, results in
# $(OUT) or ./gpu-check; without a GPU it says so and exits 0
gpu-check: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python scripts/gpu_check.py

# mutation testing of one area (tests/mutation/areas.toml), not part of `make test`: minutes to
# an hour per area on 2 cores, e.g. make mutate AREA=minswin/exercises MUTATE_ARGS="--time-limit 900"
AREA ?= minswin/exercises
mutate: $(STAMP)
	$(BIN)/python scripts/mutate.py $(AREA) $(MUTATE_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_swin.py

# executed notebooks, outputs and figures included, next to the scripts (git-ignored):
# open tutorials/NN_*.ipynb in VS Code, or with `pip install jupyterlab; jupyter lab tutorials/`
notebooks: $(STAMP)
	@$(BIN)/python scripts/make_notebooks.py

torch: $(STAMP)
	$(BIN)/python -m pip install torch --index-url https://download.pytorch.org/whl/cpu

clean:
	rm -rf $(VENV) minswin-figures .pytest_cache gpu-check
