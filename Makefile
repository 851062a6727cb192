# Two commands do everything on a fresh machine with Python >= 3.10 and make:
#   make tour   set up .venv and run the tour (shapes, costs, figures)
#   make test   set up .venv and run the test suite (adds pytest and the oracles)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# three stamps, three installs: each target installs only what it needs
#   runtime   minswin with numpy, scipy, matplotlib, safetensors, tqdm and scikit-learn (the
#             digits): the tour, the CLI, the tutorials as scripts
#   notebooks the runtime + jupytext, nbclient and ipykernel (make notebooks)
#   test      the notebooks install + pytest and the test oracles: a CPU torch, timm,
#             transformers (make test, make bench)
STAMP      := $(VENV)/.minswin-runtime
STAMP_NB   := $(VENV)/.minswin-notebooks
STAMP_TEST := $(VENV)/.minswin-test
STAMP_SITE := $(VENV)/.minswin-site

.PHONY: tour test bench notebooks torch clean gpu-check mutate

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "minswin: creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@# setuptools' UserWarning about editable installs is the same for everyone: not shown
	@echo "minswin: installing minswin and what the tour needs into $(VENV)"
	@PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install -q -e ".[data]"
	@touch $(STAMP)

$(STAMP_NB): $(STAMP)
	@echo "minswin: adding jupytext, nbclient and ipykernel (the notebooks) to $(VENV)"
	@PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install -q -e ".[notebooks]"
	@touch $(STAMP_NB)

$(STAMP_SITE): $(STAMP_NB)
	@echo "minswin: adding nbconvert (the website) to $(VENV)"
	@PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install -q -e ".[site]"
	@touch $(STAMP_SITE)

$(STAMP_TEST): $(STAMP_NB)
	@# torch is a test oracle only (never a dependency of minswin): the CPU build is installed
	@# where the machine offers it, otherwise the oracle tests are skipped with a reason
	@if $(BIN)/python -m pip install -q "torch==2.13.0+cpu" 2>/dev/null; then \
	  echo "minswin: CPU torch installed"; \
	else \
	  echo "minswin: no CPU torch here (make torch installs one)"; \
	fi
	@# the test extra's oracles (timm, which brings torchvision, and transformers) need torch:
	@# the one installed above is pinned, so that they do not replace it with a CUDA build
	@echo "minswin: installing pytest and the test oracles into $(VENV)"
	@PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install -q -e ".[test]" \
	  $$($(BIN)/python -c \
	  "import torch; print('torch==' + torch.__version__)" 2>/dev/null)
	@# what will run and what will be skipped, from what really imports
	@$(BIN)/python scripts/oracle_report.py
	@touch $(STAMP_TEST)

tour: $(STAMP)
	MPLBACKEND=Agg $(BIN)/minswin tour

# the suite, then every CuPy test again on the strict CPU stand-in for CuPy (tests/cupy_standin.py)
test: $(STAMP_TEST)
	MPLBACKEND=Agg $(BIN)/python -m pytest -q
	MINSWIN_CUPY_STANDIN=1 MPLBACKEND=Agg $(BIN)/python -m pytest -q -m gpu

# while you edit: ruff over the tree (pyproject.toml's [tool.ruff]: pyflakes, line length 100,
# import order), and the suite without the few tests marked slow, stopping at the first failure
.PHONY: lint quick
lint: $(STAMP_TEST)
	$(BIN)/python -m ruff check .

quick: $(STAMP_TEST)
	MPLBACKEND=Agg $(BIN)/python -m pytest -q -m "not slow" -x

# on a machine with a GPU: one check (scripts/gpu_check.py), results in $(OUT) or ./gpu-check.
# It runs with $(PYTHON) as it is (no venv is made, nothing downloaded), which needs CuPy, a
# CUDA torch, pytest and scikit-learn (pip install -e ".[gpu-cuda12]" brings all but torch);
# another: make gpu-check PYTHON=path/to/python. Without a GPU it says so and exits 0
gpu-check:
	MPLBACKEND=Agg $(PYTHON) scripts/gpu_check.py

# on any machine, one command: time the fast tier's layouts here (minswin tune), then minswin
# (tuned, untuned, plain) vs PyTorch, Swin-T's GEMMs alone, and the per-op profile; each
# prints the processor and NumPy's BLAS kernel (results in benchmarks/results/)
bench: $(STAMP_TEST)
	$(BIN)/minswin tune
	$(BIN)/python benchmarks/bench_swin.py --tiers fast,untuned,plain
	$(BIN)/python benchmarks/bench_gemm.py
	$(BIN)/python benchmarks/profile_swin.py

# mutation testing of one area (tests/mutation/areas.toml), not part of `make test`: minutes to
# an hour per area on 2 cores, e.g. make mutate AREA=minswin/exercises MUTATE_ARGS="--time-limit 900"
AREA ?= minswin/exercises
mutate: $(STAMP_TEST)
	$(BIN)/python scripts/mutate.py $(AREA) $(MUTATE_ARGS)

# executed notebooks, outputs and figures included, next to the scripts (git-ignored):
# open tutorials/NN_*.ipynb in VS Code, or with `pip install jupyterlab; jupyter lab tutorials/`
notebooks: $(STAMP_NB)
	@$(BIN)/python scripts/make_notebooks.py

# the tutorials as a static website in site/ (git-ignored; open site/index.html, no network
# needed): tutorials, exercises, API and the window-and-mask explorer. Executes the
# tutorials first where `make notebooks` has not (scripts/make_site.py)
.PHONY: site
site: $(STAMP_SITE)
	@MPLBACKEND=Agg $(BIN)/python scripts/make_site.py

torch: $(STAMP)
	$(BIN)/python -m pip install torch --index-url https://download.pytorch.org/whl/cpu

clean:
	rm -rf $(VENV) minswin-figures .pytest_cache gpu-check site test-artifacts
