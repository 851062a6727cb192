"""What `make test` will really run, read from what imports in this environment.

Run by the Makefile after the test install (and by hand: `python scripts/oracle_report.py`).
One line per oracle: imported (which version) and what runs, or why not and what is skipped.
Nothing here is assumed from what pip said it installed: each name is imported.
"""
import importlib
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def version(module):
    return getattr(module, "__version__", "?")


def try_import(name):
    """(module, None) or (None, 'ExcType: first line of the message')."""
    try:
        return importlib.import_module(name), None
    except Exception as err:                              # a broken build raises RuntimeError
        return None, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def shim():
    """tests/test_folders.py's torchvision shim, as the oracle tests use it."""
    spec = importlib.util.spec_from_file_location(
        "oracle_shim", os.path.join(HERE, "..", "tests", "test_folders.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod._allow_cpu_torch_with_cuda_torchvision


def main():
    say = lambda msg: print(f"minswin: {msg}")            # noqa: E731
    torch, why = try_import("torch")
    if torch is None:
        say(f"torch does not import ({why}): the PyTorch and timm/transformers oracle tests "
            "will be SKIPPED (make torch installs a CPU torch)")
    else:
        say(f"torch {version(torch)} imports: the PyTorch oracle tests will run")
        tv, why = try_import("torchvision")
        if tv is not None:
            say(f"torchvision {version(tv)} imports")
        else:
            say(f"torchvision does not import by itself ({why}); the oracle tests use only "
                "its pure-Python part, through the shim in tests/test_folders.py, and run no "
                "torchvision op")
            try:
                shim()(torch)
            except Exception as err:                      # the shim itself failed
                say(f"the torchvision shim failed too ({type(err).__name__}: {err})")
        for name in ("timm", "transformers"):
            mod, why = try_import(name)
            if mod is None:
                say(f"{name} does not import ({why}): its oracle tests will be SKIPPED")
            else:
                say(f"{name} {version(mod)} imports: its oracle tests will run")
    missing = [n for n in ("jupytext", "nbclient", "ipykernel") if try_import(n)[0] is None]
    if missing:
        say(f"{', '.join(missing)} missing: the tutorials-as-notebooks tests will be SKIPPED")
    else:
        say("jupytext, nbclient and ipykernel import: the tutorials run as notebooks")
    if try_import("sklearn")[0] is None:
        say("scikit-learn missing: the training tests (the digits) will be SKIPPED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
