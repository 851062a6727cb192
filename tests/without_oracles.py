"""Run `minswin ...` with the test oracles made unimportable, as in a `make tour` install.

    python tests/without_oracles.py tour --out figs

torch, torchvision, timm, transformers and the notebook tools (jupytext, nbclient, ipykernel)
are test-only; a finder placed first on sys.meta_path refuses them, so any import of them by
minswin fails here as it would in an environment without them. `.ci/run` also runs
`make tour` in a fresh .venv that has only minswin's runtime dependencies, before `make test`
adds the oracles: that is the check on the real install; this one is the quick one.
"""
import importlib.abc
import runpy
import sys

ORACLES = ("torch", "torchvision", "timm", "transformers", "jupytext", "nbclient", "ipykernel")


class RefuseOracles(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ORACLES:
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by "
                                      "tests/without_oracles.py)", name=name)
        return None


if __name__ == "__main__":
    for name in list(sys.modules):
        if name.split(".")[0] in ORACLES:
            del sys.modules[name]
    sys.meta_path.insert(0, RefuseOracles())
    sys.argv = ["minswin", *sys.argv[1:]]
    runpy.run_module("minswin", run_name="__main__", alter_sys=True)
