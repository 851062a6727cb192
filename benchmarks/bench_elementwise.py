"""What one NumPy pass costs here, and what that means for Swin-T's exact GELU.

    python benchmarks/bench_elementwise.py

Each row times one in-place float32 ufunc over a block of block_elements() values (the block
size the fast tier uses, minswin.fast.parallel), on one core, and reports nanoseconds per
element. Then the fast tier's GELU, forward and backward (minswin.fast.gelu), is timed on
stage 1's hidden activation, (8 * 56 * 56, 384), on one core and on two, and scaled to every
GELU of a batch-8 Swin-T step (45.8 M values). PyTorch's fused GELU is timed on the same
array when torch is importable.
"""
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ns_per_element(fn, n, reps):
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) / n * 1e9


def main():
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
    sys.path.insert(0, ROOT)
    from minswin.runtime import tune_cpu_process  # as the other benchmarks
    tune_cpu_process()
    import numpy as np

    from minswin.configs import get_config
    from minswin.fast import parallel
    from minswin.fast.gelu import gelu_backward, gelu_forward
    n = parallel.block_elements()
    rng = np.random.default_rng(0)
    a = rng.standard_normal(n, dtype=np.float32)
    b = rng.standard_normal(n, dtype=np.float32)
    e = -0.5 * a * a                                       # GELU's exp argument
    out = np.empty_like(a)
    passes = {
        "a + 0.5 (scalar)": lambda: np.add(a, 0.5, out=out),
        "a * b": lambda: np.multiply(a, b, out=out),
        "1 / a": lambda: np.divide(1.0, a, out=out),
        "abs(a)": lambda: np.abs(a, out=out),
        "copysign(a, b)": lambda: np.copysign(a, b, out=out),
        "exp(e)": lambda: np.exp(e, out=out),
    }
    print(f"one float32 pass over {n} elements, one core (ns per element):")
    for name, fn in passes.items():
        print(f"  {name:18s} {ns_per_element(fn, n, 200):6.3f}")

    c = get_config("swin_t")
    side = c.img_size // c.patch_size
    hidden = [(8 * (side // 2 ** i) ** 2, int(d * c.mlp_ratio), depth)
              for i, (d, depth) in enumerate(zip(c.stage_dims, c.depths))]
    total = sum(t * h * depth for t, h, depth in hidden)   # GELU values in one step
    h = rng.standard_normal(hidden[0][:2], dtype=np.float32)
    print(f"\nGELU forward and backward (fast tier) on {h.shape} ({h.size / 1e6:.1f} M values); "
          f"a batch-8 Swin-T step has {total / 1e6:.1f} M:")
    dh = rng.standard_normal(h.shape, dtype=np.float32)

    def gelu_step():
        gelu_backward(dh, gelu_forward(h)[1])
    for threads in (1, 2):
        parallel.set_num_threads(threads)
        ns = ns_per_element(gelu_step, h.size, 7)
        print(f"  minswin, {threads} thread(s): {ns:5.2f} ns per value -> "
              f"{ns * total / 1e9:.3f} s per step")
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(2)
    th = torch.from_numpy(h)
    ns = ns_per_element(lambda: torch.nn.functional.gelu(th), h.size, 7)
    print(f"  torch GELU forward only, 2 threads: {ns:5.2f} ns per value -> "
          f"{ns * total / 1e9:.3f} s per step")


if __name__ == "__main__":
    main()
