"""How the fast tier picks its GEMM layouts and block sizes: by timing them on this machine.

A matrix product can be handed to the BLAS in more than one way, with the same numbers coming
out: `x @ w.T` passes w with a "transposed" flag, `x @ np.ascontiguousarray(w.T)` first copies
w into the other memory order and passes it plain. Which one runs faster depends on the
processor and on which kernels the BLAS picked for it, not on the maths, and by a lot:

* Intel Xeon with AVX-512 (OpenBLAS SkylakeX kernels), 2 threads, float32, the first MLP
  layer of Swin-T's stage 1 (25088 x 96 times 96 x 384): `x @ w.T` 50 GFLOP/s, the copied
  `w.T` 134. At the qkv shape (96 -> 288) the first form wins instead.
* AMD EPYC, Zen 5 (OpenBLAS's Haswell kernels, as OPENBLAS_CORETYPE=Haswell in that
  machine's environment asked), the same threads, the same shapes (best of 7,
  load average 0.7, 2026-12-08): the backward product dW = dout.T @ x ran at 89 GFLOP/s for
  qkv and 178 as (x.T @ dout).T; for fc1 the two were level, and for the stage-2 MLP the
  first form won.

So nothing here is a constant tuned on one processor. Each *class* of product (which product,
its dtype, and its shape: channels exactly, tokens to the nearest power of two) is timed the
first time the fast tier meets it, on its real operands: every candidate of the table below,
alternating, for at least 3 rounds and 0.1 s, and the best time of each counts (load from
other programs only ever adds time). An alternative replaces the first candidate (the
default) only if it is more than 5% faster in two separate timings: on a busy machine a
single timing can be wrong by far more than that. The choice is kept in memory and in a small
JSON file, one per machine (the CPU, NumPy, the BLAS and its kernel, the threads), with the
times and the load average it was measured under; you may delete the file at any time. On a
machine busy with other programs (`busy()`) nothing is timed: timings there are noise.

    $MINSWIN_CACHE/tuning-<machine>.json, else ~/.cache/minswin/tuning-<machine>.json

`minswin tune` times a whole model's products at once and prints what it chose.
MINSWIN_TUNE=0 turns all of this off: every product then takes its table's default, nothing
is timed and no file is read or written (the tests run so). Every candidate computes the same
matrix product; they differ by float round-off at most, and only in the order the BLAS sums
(tests/test_tuning.py runs the model with each one forced).

The candidates, each with the reason it is in the table:

linear_forward   out (T, Cout) = x (T, Cin) @ w.T, w stored (Cout, Cin)
    "w.T"        the transposed view: no copy. The faster form at qkv on the Xeon above (level
                 with the copy there on the AMD machine: 82 against 86 GFLOP/s).
    "copy w.T"   w.T copied to C order first (Cin x Cout floats, small beside x): 2.7x faster
                 at Swin-T's fc1 on the Xeon above.
linear_dx        dx (T, Cin) = dout (T, Cout) @ w
    "w"          w as stored.
    "copy w.T"   the other memory order of w, as its transpose: on the AMD machine 171
                 against 88 GFLOP/s at qkv (96 -> 288).
linear_dw        dw (Cout, Cin) = dout.T @ x
    "dout.T @ x" as written.
    "(x.T @ dout).T"  the product in the other order, copied to C order after (Cout x Cin,
                 small): 178 against 89 GFLOP/s at qkv on the AMD machine.
attention_kv     how attention stores k and v of each window, (nH, N, d) each: the scores
                 q @ k^T and a @ v, and their backward products, read them
    "rows"       C order, (N, d): q @ k^T passes k transposed.
    "columns"    stored (d, N) and read through a transposed view: q @ k^T is then a plain
                 product and ds @ k the transposed one. The same two flags for v's products.
                 On the AMD machine the two measured level (0.51 against 0.52 ms a block,
                 under load); kept because these 49 x 32 products run OpenBLAS's small-matrix
                 paths, which differ by kernel and transpose flag. No machine where it wins
                 has been measured yet.
row_block        elements per block of the row-block kernels (GELU, LayerNorm, softmax, the
                 attention's blocks of windows; minswin.fast.parallel)
    262144       1 MiB of float32, the default: on the AMD machine GELU of (25088, 384) took
                 28 ms, against 47 ms with 64K blocks and 39 ms with 1M.
    65536, 1048576   slower on the AMD machine (above); kept because the best size follows the
                 cache sizes (L2 per core), which differ between processors. Timed on the
                 fast GELU of 4M float32 values.

Only products of 20 MFLOP or more are timed; smaller ones take the default (a few microseconds
of difference, less than the noise of timing them). On CuPy nothing is timed: the default runs.
"""
import contextlib
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
import threading
import time
import warnings

import numpy as np

ENV = "MINSWIN_TUNE"          # 0/off: defaults only; 1/on (or unset): time at first use
CACHE_ENV = "MINSWIN_CACHE"   # the folder of the cache file
FORMAT = 1                    # the cache file's format; another one is ignored
MIN_FLOP = 2e7                # smaller products take the default untimed
MARGIN = 0.05                 # an alternative must beat the default by this much
ROUNDS = 3                    # timed calls of each candidate (after one warm-up each), at
MIN_SECONDS = 0.1             # least, and more until this much time has passed,
MAX_ROUNDS = 25               # up to this many


def _copy_t(a):
    """a.T copied to C order."""
    return np.ascontiguousarray(a.T)


# product -> {candidate: function}; the first candidate is the default
PRODUCTS = {
    "linear_forward": {"w.T": lambda x, w: x @ w.T,                # (T, Cin) (Cout, Cin)
                       "copy w.T": lambda x, w: x @ _copy_t(w)},
    "linear_dx": {"w": lambda d, w: d @ w,                         # (T, Cout) (Cout, Cin)
                  "copy w.T": lambda d, w: d @ _copy_t(w).T},
    "linear_dw": {"dout.T @ x": lambda d, x: d.T @ x,              # (T, Cout) (T, Cin)
                  "(x.T @ dout).T": lambda d, x: _copy_t(x.T @ d)},
}
LAYOUTS = {"attention_kv": ("rows", "columns")}
BLOCK_SIZES = {"row_block": (262144, 65536, 1048576)}
DEFAULTS = {**{p: next(iter(c)) for p, c in PRODUCTS.items()},
            **{k: v[0] for k, v in {**LAYOUTS, **BLOCK_SIZES}.items()}}

clock = time.perf_counter    # the timer (tests replace it)
_lock = threading.RLock()
_choices = None               # class key -> {"choice": name, "seconds": {name: best time}}
_forced = {}                  # product -> candidate, set by `forced` (tests, benchmarks)
_enabled = None               # set_enabled's last word: True, False or None (the environment)
_fingerprint = None
_warned = False
_local = threading.local()    # .timing: this thread is timing candidates now
on_measured = None            # called with (key, record) after each new measurement
measure_when_busy = False     # time new classes even on a busy machine (`minswin tune`)


def _fresh_lock_after_fork():
    global _lock
    _lock = threading.RLock()    # a forked child has none of the parent's lock holders


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_lock_after_fork)


# ---------------------------------------------------------------------------- switches

def enabled():
    """Whether classes not yet chosen are timed: set_enabled, else MINSWIN_TUNE (default on)."""
    if _enabled is not None:
        return _enabled
    value = os.environ.get(ENV, "").strip().lower()
    if value in ("", "1", "on", "yes", "true"):
        return True
    if value in ("0", "off", "no", "false"):
        return False
    raise ValueError(f"{ENV}: expected 0 (off) or 1 (on), got {os.environ[ENV]!r}")


def set_enabled(on):
    """True: time new classes; False: defaults only (nothing timed, read or written);
    None: back to MINSWIN_TUNE."""
    global _enabled
    if on is not None and not isinstance(on, bool):
        raise ValueError(f"on: expected True, False or None, got {on!r}")
    _enabled = on


@contextlib.contextmanager
def forced(**choices):
    """Inside the `with`, the given products use the given candidates, whatever is cached:
    ``with forced(linear_forward="copy w.T", row_block=65536): ...``"""
    for product, name in choices.items():
        known = candidates(product)
        if name not in known:
            raise ValueError(f"{product}: expected one of {list(known)}, got {name!r}")
    with _lock:
        before = dict(_forced)
        _forced.update(choices)
    try:
        yield
    finally:
        with _lock:
            _forced.clear()
            _forced.update(before)


def candidates(product):
    """The candidate names of a product, the default first."""
    table = PRODUCTS.get(product) or LAYOUTS.get(product) or BLOCK_SIZES.get(product)
    if table is None:
        raise ValueError(f"product: expected one of {list(DEFAULTS)}, got {product!r}")
    return list(table)


# ---------------------------------------------------------------------------- the machine

def blas_info():
    """NumPy's BLAS as threadpoolctl sees it: {'blas', 'version', 'kernel', 'threads'};
    without threadpoolctl, the name and version NumPy was built with."""
    try:
        from threadpoolctl import threadpool_info
        libs = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
        # NumPy's own (torch or SciPy may have loaded others): the one in numpy's folder
        libs.sort(key=lambda lib: "numpy" not in lib.get("filepath", ""))
        if libs:
            lib = libs[0]
            return {"blas": lib.get("internal_api"), "version": lib.get("version"),
                    "kernel": lib.get("architecture"), "threads": lib.get("num_threads")}
    except Exception:                                      # not installed, or an odd library
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return {"blas": blas.get("name"), "version": blas.get("version"), "kernel": None,
                "threads": None}
    except Exception:
        return {"blas": None, "version": None, "kernel": None, "threads": None}


def cpu_model():
    """The processor: lscpu's model name, with vendor, family, model and stepping (a virtual
    machine often reports only 'AMD EPYC' as the name)."""
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("vendor_id", "cpu family", "model", "model name", "stepping"):
                    info.setdefault(key, value.strip())
                elif not line.strip() and info:
                    break                                  # the first processor is enough
    except OSError:
        pass
    name = info.get("model name") or platform.processor() or platform.machine() or "unknown"
    ids = [info.get(k) for k in ("vendor_id", "cpu family", "model", "stepping")]
    if all(ids):
        name += " ({}, family {}, model {}, stepping {})".format(*ids)
    return name


def fingerprint():
    """What the choices depend on: the processor, NumPy, its BLAS and kernel, the threads
    (as they are when the fast tier first asks, once per process)."""
    global _fingerprint
    if _fingerprint is None:
        from .parallel import num_threads
        blas = blas_info()
        _fingerprint = {"cpu": cpu_model(), "numpy": np.__version__, **blas,
                        "row_threads": num_threads(), "python": platform.python_version(),
                        "format": FORMAT}
    return _fingerprint


def cache_path():
    """The cache file of this machine (it may not exist yet)."""
    folder = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "minswin")
    digest = hashlib.sha256(json.dumps(fingerprint(), sort_keys=True).encode()).hexdigest()
    return os.path.join(folder, f"tuning-{digest[:12]}.json")


def _read_file():
    """The choices in this machine's file: {} if there is none, or it is unreadable, or it was
    written for another machine or format."""
    try:
        with open(cache_path()) as f:
            data = json.load(f)
        if data.get("machine") == fingerprint() and isinstance(data.get("choices"), dict):
            return {k: v for k, v in data["choices"].items()
                    if isinstance(v, dict) and _valid(k, v.get("choice"))}
    except (OSError, ValueError, AttributeError):
        pass
    return {}


def _valid(key, choice):
    product = key.split("|", 1)[0]
    return product in DEFAULTS and choice in candidates(product)


def _write_file():
    """Write the choices (merged with what another process may have added): whole or not at
    all (a temporary file, then a rename). A folder that cannot be written is warned about
    once; the choices then live in this process only."""
    global _warned
    path = cache_path()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        merged = {**_read_file(), **_choices}
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tuning-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"machine": fingerprint(), "choices": merged}, f, indent=1,
                          sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as err:
        if not _warned:
            _warned = True
            warnings.warn(f"minswin: cannot write the tuning cache {path!r} ({err}); the "
                          f"choices are kept for this process only (set {CACHE_ENV} to "
                          "another folder)", RuntimeWarning, stacklevel=3)


def choices():
    """Every class chosen so far, read from this machine's file the first time."""
    global _choices
    with _lock:
        if _choices is None:
            _choices = _read_file()
        return _choices


def forget():
    """Forget every choice, in memory and in this machine's file (the next use times again)."""
    global _choices, _fingerprint
    with _lock:
        path = cache_path()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        _choices, _fingerprint = None, None
        return path


# ---------------------------------------------------------------------------- timing

def best_times(trials, rounds=ROUNDS, min_seconds=MIN_SECONDS, max_rounds=MAX_ROUNDS):
    """{name: best seconds} of {name: function}: one warm-up call each, then rounds in which
    every candidate runs once, alternating (a busy neighbour then slows them alike), at least
    `rounds` of them and more, up to `max_rounds`, until `min_seconds` have passed: a short
    burst of load then spoils some rounds but not the best one."""
    for fn in trials.values():
        fn()
    seen = {name: math.inf for name in trials}
    start, done = clock(), 0
    while done < rounds or (done < max_rounds and clock() - start < min_seconds):
        for name, fn in trials.items():
            t = clock()
            fn()
            seen[name] = min(seen[name], clock() - t)
        done += 1
    return seen


def usable_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        os.cpu_count() or 1


def busy():
    """Whether other programs hold the cores: a load average over twice the usable cores.

    Then a BLAS call on two threads waits, every round, for whichever of its threads the
    system has put aside: measured on 2 cores at a load of 8, products of 1 ms took 20 to
    190 ms at best of 25, in either layout, so a timing says nothing about the layouts. A
    class met on a busy machine takes its default, untimed and unrecorded, and is timed when
    it is next met on a quieter one (or by `minswin tune`, which times anyway and says so).
    """
    try:
        return os.getloadavg()[0] > 2 * usable_cores()
    except (OSError, AttributeError):                      # no load average here
        return False


def _beats_default(seconds):
    """The fastest candidate if it beats the default (the first) by more than MARGIN."""
    default = next(iter(seconds))
    fastest = min(seconds, key=seconds.get)
    return fastest if seconds[fastest] < (1 - MARGIN) * seconds[default] else None


def measure(trials, names):
    """(choice, best seconds per name): an alternative to the default must win twice, in two
    separate timings, by more than MARGIN; otherwise the default stays."""
    first = best_times({name: trials(name) for name in names})
    winner = _beats_default(first)
    if winner is None:
        return names[0], first
    second = best_times({name: trials(name) for name in names})
    both = {name: min(first[name], second[name]) for name in names}
    return (winner if _beats_default(second) == winner else names[0]), both


def pick(product, shape, dtype, trials, flop=math.inf):
    """The candidate `product` uses for this class. A class met for the first time, with
    tuning on and at least MIN_FLOP per call, is timed (`measure`) by calling trials(name) ->
    a function of no arguments; otherwise the default is used and nothing is timed."""
    if product in _forced:
        return _forced[product]
    if flop < MIN_FLOP or not enabled() or getattr(_local, "timing", False):
        return DEFAULTS[product]
    key = f"{product}|{np.dtype(dtype).name}|" + "x".join(str(s) for s in shape)
    with _lock:
        known = choices().get(key)
        if known is not None:
            return known["choice"]
        if busy() and not measure_when_busy:
            return DEFAULTS[product]                       # timed later, when it is quieter
        _local.timing = True
        try:
            choice, seconds = measure(trials, candidates(product))
        finally:
            _local.timing = False
        record = {"choice": choice,
                  "seconds": {str(k): float(f"{v:.4g}") for k, v in seconds.items()},
                  "load": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}
        _choices[key] = record
        _write_file()
    if on_measured is not None:
        on_measured(key, record)
    return choice


def tokens_class(rows):
    """Rows (tokens) to the nearest power of two: batch 8 and batch 9 share their choices."""
    return 1 << max(0, round(math.log2(max(rows, 1))))


# ---------------------------------------------------------------------------- the products

def product(name, a, b):
    """The product `name` of the table (linear_forward, linear_dx, linear_dw) of 2-D a, b,
    computed the way chosen for its class on this machine."""
    funcs = PRODUCTS[name]
    if not isinstance(a, np.ndarray):                       # CuPy: its default, untimed
        return funcs[DEFAULTS[name]](a, b)
    rows, inner = a.shape                                  # (T, Cin) or (T, Cout)
    outer = b.shape[0] if name == "linear_forward" else b.shape[1]
    shape = (tokens_class(rows), inner, outer)
    flop = 2.0 * rows * inner * outer
    choice = pick(name, shape, a.dtype, lambda c: lambda: funcs[c](a, b), flop)
    return funcs[choice](a, b)


def kv_layout(windows, nH, N, d, dtype, xp=np):
    """'rows' or 'columns': how the attention stores k and v (see the table above) for blocks
    of `windows` windows of nH heads, N tokens and head width d."""
    if xp is not np:
        return DEFAULTS["attention_kv"]
    flop = 4.0 * windows * nH * N * N * d                  # q @ k^T and ds @ k

    def trials(layout):
        rng = np.random.default_rng(0)
        q = rng.standard_normal((windows, nH, N, d)).astype(dtype)
        ds = rng.standard_normal((windows, nH, N, N)).astype(dtype)
        k = stored(layout, (windows, nH, N, d), dtype)
        k[...] = q
        return lambda: (q @ k.swapaxes(-1, -2), ds @ k)
    return pick("attention_kv", (windows, nH, N, d), dtype, trials, flop)


def stored(layout, shape, dtype, xp=np):
    """An empty (..., N, d) array in the given layout: C order ('rows'), or a transposed view
    of a C-order (..., d, N) array ('columns')."""
    if layout == DEFAULTS["attention_kv"]:
        return xp.empty(shape, dtype)
    return xp.empty((*shape[:-2], shape[-1], shape[-2]), dtype).swapaxes(-1, -2)


def block_elements():
    """Elements per row block (minswin.fast.parallel), chosen by timing the fast GELU."""
    def trials(size):
        from . import parallel
        from .gelu import gelu_and_derivative
        h = np.random.default_rng(0).standard_normal(1 << 22).astype(np.float32)

        def run():
            with parallel.block_elements_set(size):
                gelu_and_derivative(h)
        return run
    return int(pick("row_block", (1 << 22,), np.float32, trials))


def summary():
    """Lines describing the machine and every choice made so far (for `minswin tune`)."""
    fp = fingerprint()
    lines = [f"processor: {fp['cpu']}",
             f"NumPy {fp['numpy']}, BLAS {fp['blas']} {fp['version']} (kernel {fp['kernel']}, "
             f"{fp['threads']} threads); row blocks on {fp['row_threads']} threads",
             f"cache: {cache_path()}"]
    if not choices():
        lines.append("  nothing timed yet: `minswin tune` times Swin-T's and swin_digits' "
                     "products now, or the fast tier does as it meets them")
    busy_loads = [rec.get("load") for rec in choices().values()
                  if (rec.get("load") or 0) > 2 * usable_cores()]
    if busy_loads:
        lines.append(f"  note: {len(busy_loads)} classes were timed at a load average over "
                     f"twice the {usable_cores()} cores (up to {max(busy_loads)}): their "
                     "choices may be noise; `minswin tune --retune` on a quiet machine")
    for key, rec in sorted(choices().items()):
        names = [str(c) for c in candidates(key.split("|", 1)[0])]   # the table's order
        times = ", ".join(f"{k} {1e3 * rec['seconds'][k]:.2f} ms" for k in names
                          if k in rec["seconds"])
        lines.append(f"  {key:<40} -> {rec['choice']:<16} ({times})")
    return lines


if __name__ == "__main__":                                  # python -m minswin.fast.tuning
    print("\n".join(summary()), file=sys.stdout)
