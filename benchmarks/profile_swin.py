"""Where does the time go? Per-op wall time of Swin-T's forward and of a training step.

    python benchmarks/profile_swin.py [--batch 8] [--threads 2] [--rounds 3] [--plain]

Every op function of both tiers (minswin.ops and its fast twins in minswin.fast:
`linear_forward`, `gelu_forward`, ...) is wrapped with a timer for the run; the model runs
the fast tier, or the plain one with --plain. An op's time is its wall time minus that of the
wrapped ops it calls (attention's own time excludes its two linears and its softmax). Wall
time is the right measure here: the fast ops share their row blocks among threads
(minswin.fast.parallel), and a profiler that samples only the calling thread, like cProfile,
would miss the others' work.
"""
import argparse
import collections
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OP_MODULES = ["minswin.ops." + m for m in (
    "attention", "droppath", "gelu", "layernorm", "linear", "mlp", "patch_embed",
    "patch_merging", "relative_bias", "residual", "softmax", "window")]
OP_MODULES += ["minswin.fast." + m for m in (
    "attention", "cosine_attention", "gelu", "layernorm", "linear", "mlp", "patch_merging",
    "residual", "softmax")]


def instrument(modules):
    """Wrap every op function; returns the dict of exclusive seconds per op name."""
    seen = collections.defaultdict(float)
    stack = []

    def wrap(name, fn):
        def timed(*args, **kwargs):
            t = time.perf_counter()
            stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.perf_counter() - t
                children = stack.pop()
                seen[name] += spent - children
                if stack:
                    stack[-1] += spent
        return timed

    ops = {}                                               # the function -> its timed wrapper
    for mod in modules:
        for name, fn in vars(mod).items():
            if (callable(fn) and getattr(fn, "__module__", "") == mod.__name__
                    and (name.endswith(("_forward", "_backward"))
                         or name in ("from_windows", "add"))):
                ops[fn] = wrap(name, fn)
    # replace the op wherever it is called from: every module that imported it by name, and
    # the tiers the layers dispatch through
    from minswin import tiers
    holders = [m for m in list(sys.modules.values())
               if getattr(m, "__name__", "").startswith("minswin")] + [tiers.PLAIN, tiers.FAST]
    for holder in holders:
        for name, value in list(vars(holder).items()):
            if callable(value) and value in ops:
                setattr(holder, name, ops[value])
    return seen


def table(title, seen, wall, rounds, top):
    total = sum(seen.values()) / rounds
    print(f"\n{title}: {wall:.3f} s per call ({total:.3f} s inside ops)")
    print(f"{'op':<28} {'s':>7} {'share':>6}")
    for name, s in sorted(seen.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{name:<28} {s / rounds:7.3f} {s / rounds / wall:6.1%}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--model", default="swin_t")
    p.add_argument("--top", type=int, default=14)
    p.add_argument("--plain", action="store_true", help="profile the plain tier (minswin/ops)")
    args = p.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, ROOT)
    from minswin.runtime import tune_cpu_process  # as the benchmark and the CLI do
    tune_cpu_process()
    import importlib

    import numpy as np

    import minswin
    seen = instrument([importlib.import_module(m) for m in OP_MODULES])
    minswin.use_fast(not args.plain)
    model = minswin.create_model(args.model).train()
    size = model.config.img_size
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, size, size, 3), dtype=np.float32)
    d = rng.standard_normal((args.batch, model.config.num_classes), dtype=np.float32)

    def step():
        model.zero_grad()
        model.forward(x)
        model.backward(d)

    step()                                                 # warm-up: caches, first touches
    from minswin.fast import tuning
    blas = tuning.blas_info()
    print(f"{args.model} batch {args.batch}, {args.threads} threads, float32, "
          f"{'plain' if args.plain else 'fast'} tier; processor {tuning.cpu_model()}; NumPy's "
          f"BLAS {blas['blas']} {blas['version']} ({blas['kernel']} kernels); tuning "
          f"{'on' if tuning.enabled() else 'off'}; load average {os.getloadavg()[0]:.1f}")
    for title, fn in (("forward", lambda: model.forward(x)), ("forward + backward", step)):
        seen.clear()
        t = time.perf_counter()
        for _ in range(args.rounds):
            fn()
        table(title, seen, (time.perf_counter() - t) / args.rounds, args.rounds, args.top)


if __name__ == "__main__":
    main()
