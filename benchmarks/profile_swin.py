"""Where does the time go? Per-op profile of one Swin-T training step (forward + backward).

    python benchmarks/profile_swin.py [--batch 8] [--threads 2]

NumPy's ufuncs and matmul run inside the Python function that calls them, so cProfile's
"own time" of each op function (`linear_forward`, `gelu_backward`, ...) is the time of the
array work that op does. The table lists those, largest first, with their share of the step.
"""
import argparse
import cProfile
import os
import pstats
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default="swin_t")
    p.add_argument("--top", type=int, default=18)
    args = p.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from minswin.runtime import tune_cpu_process          # as the benchmark and the CLI do
    tune_cpu_process()
    import numpy as np

    import minswin
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
    t = time.perf_counter()
    step()
    wall = time.perf_counter() - t
    prof = cProfile.Profile()
    prof.runcall(step)
    stats = pstats.Stats(prof).stats
    rows = []
    for (path, _, func), (_, ncalls, own, cum, _) in stats.items():
        if "minswin" in path:
            rows.append((own, func, os.path.relpath(path), ncalls))
    rows.sort(reverse=True)
    total = sum(r[0] for r in rows)
    print(f"{args.model} batch {args.batch}, {args.threads} threads: step {wall:.3f} s "
          f"(profiled {total:.3f} s in minswin functions)")
    print(f"{'op':<34} {'file':<30} {'calls':>5} {'own s':>8} {'share':>6}")
    for own, func, path, n in rows[:args.top]:
        print(f"{func:<34} {path[-30:]:<30} {n:>5} {own:8.3f} {own / total:6.1%}")


if __name__ == "__main__":
    main()
