"""Swin-T's dense GEMMs alone: NumPy's BLAS against PyTorch's, on the very same shapes.

    python benchmarks/bench_gemm.py             # batch 8, 2 threads, 5 alternating rounds
    python benchmarks/bench_gemm.py --batch 1

Every Linear of Swin-T (the patch embedding as a GEMM, qkv, proj, fc1, fc2 of each block, the
patch-merging reductions, the head) runs its three products on random float32 data:

    forward  out = x @ w.T       backward  dx = dout @ w,   dw = dout.T @ x

each timed alone, in three ways alternating: NumPy as written above, NumPy in the layout the
fast tier chose for the shape on this machine (minswin/fast/tuning.py: `minswin tune` first,
on a quiet machine), and PyTorch, median of the rounds, then summed with the
number of layers of that shape (the attention's small per-window products, q @ k^T and
a @ v, are not in it: they belong to the attention op). The total is the GEMM part of one
training step in each framework. With `results/latest.json` from bench_swin.py at the same
batch, the rest of the step (everything that is not a dense GEMM) is printed as well: the step
minus its GEMMs.
Results go to results/gemm.{json,md}.
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def swin_t_linears(batch):
    """[(stage, name, tokens, c_in, c_out, count)] for every Linear of Swin-T at 224x224."""
    sys.path.insert(0, ROOT)
    from minswin.configs import get_config
    c = get_config("swin_t")
    side = c.img_size // c.patch_size                      # 56 tokens a side in stage 1
    rows = [(0, "patch_embed", batch * side * side, c.in_chans * c.patch_size ** 2,
             c.embed_dim, 1)]
    for i, (dim, depth) in enumerate(zip(c.stage_dims, c.depths)):
        tokens = batch * (side // 2 ** i) ** 2
        hidden = int(dim * c.mlp_ratio)
        rows += [(i + 1, "qkv", tokens, dim, 3 * dim, depth),
                 (i + 1, "proj", tokens, dim, dim, depth),
                 (i + 1, "fc1", tokens, dim, hidden, depth),
                 (i + 1, "fc2", tokens, hidden, dim, depth)]
        if i + 1 < c.num_layers:                           # merging: 4C -> 2C on a quarter
            rows.append((i + 1, "reduction", tokens // 4, 4 * dim, 2 * dim, 1))
    rows.append((c.num_layers, "head", batch, c.num_features, c.num_classes, 1))
    return rows


PAUSE_S = 0.1   # before each library's turn: the other's idle threads spin-wait for a while
                # after their last product, and on 2 cores a spinning thread halves the next one


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def gemm_times(tokens, c_in, c_out, rounds, torch):
    """Median seconds of (forward, dx, dw) for NumPy and, if given, torch: {name: [3 floats]}."""
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.standard_normal((tokens, c_in), dtype=np.float32)
    w = rng.standard_normal((c_out, c_in), dtype=np.float32)
    d = rng.standard_normal((tokens, c_out), dtype=np.float32)
    from minswin.fast.tuning import product
    calls = {"numpy": (lambda: x @ w.T, lambda: d @ w, lambda: d.T @ x),
             "tuned": (lambda: product("linear_forward", x, w),
                       lambda: product("linear_dx", d, w), lambda: product("linear_dw", d, x))}
    if torch is not None:
        tx, tw, td = (torch.from_numpy(a) for a in (x, w, d))
        calls["torch"] = (lambda: tx @ tw.T, lambda: td @ tw, lambda: td.T @ tx)
    seen = {k: [[], [], []] for k in calls}
    for _ in range(rounds + 1):                            # the first round is a warm-up
        for k, fns in calls.items():
            time.sleep(PAUSE_S)                            # the other library's threads rest
            for j, fn in enumerate(fns):
                seen[k][j].append(timed(fn))
    return {k: [statistics.median(v[1:]) for v in lists] for k, lists in seen.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    args = p.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, ROOT)
    from minswin.runtime import tune_cpu_process  # the same process as bench_swin.py
    tune_cpu_process()
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None

    from minswin.fast import tuning
    blas = tuning.blas_info()
    total = {"numpy": [0.0] * 3, "tuned": [0.0] * 3, "torch": [0.0] * 3}
    lines = [f"Processor: {tuning.cpu_model()}; NumPy's BLAS: {blas['blas']} {blas['version']} "
             f"({blas['kernel']} kernels); "
             f"tuning: {tuning.cache_path() if tuning.enabled() else 'off'}"
             f"; load average {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M')}", "",
             "| stage | layer | tokens | C_in -> C_out | count | NumPy fwd, dx, dw GFLOP/s | "
             "tuned layouts fwd, dx, dw GFLOP/s | torch fwd, dx, dw GFLOP/s |",
             "|---|---|---|---|---|---|---|---|"]
    for stage, name, tokens, c_in, c_out, count in swin_t_linears(args.batch):
        t = gemm_times(tokens, c_in, c_out, args.rounds, torch)
        flop = 2 * tokens * c_in * c_out
        rates = {k: ", ".join(f"{flop / s / 1e9:.0f}" for s in v) for k, v in t.items()}
        for k, v in t.items():
            total[k] = [a + count * s for a, s in zip(total[k], v)]
        lines.append(f"| {stage} | {name} | {tokens} | {c_in} -> {c_out} | {count} | "
                     f"{rates['numpy']} | {rates['tuned']} | {rates.get('torch', '-')} |")
        print(lines[-1], flush=True)

    if torch is None:
        del total["torch"]
    step = {k: sum(v) for k, v in total.items()}

    def cell(framework, seconds):
        return f"{seconds(framework):.3f}" if framework in total else "-"
    lines += ["", f"Swin-T batch {args.batch}, {args.threads} threads: the GEMMs of one training "
              "step (forward + dx + dw, seconds)", "",
              "| | NumPy as written | NumPy, tuned layouts (minswin) | torch |",
              "|---|---|---|---|",
              "| forward GEMMs | " + " | ".join(cell(k, lambda k: total[k][0])
                                               for k in ("numpy", "tuned", "torch")) + " |",
              "| forward + backward GEMMs | " + " | ".join(
                  cell(k, step.get) for k in ("numpy", "tuned", "torch")) + " |"]
    latest = os.path.join(args.out, "latest.json")
    rest = None
    if os.path.exists(latest):
        with open(latest) as f:
            runs = [r for r in json.load(f)["rows"]
                    if r["case"] == "swin_t" and r["batch"] == args.batch]
        if runs and runs[0].get("torch_fwd_bwd_s") and "torch" in step:
            r = runs[0]
            rest = {"numpy": r["minswin_fwd_bwd_s"] - step["tuned"],
                    "torch": r["torch_fwd_bwd_s"] - step["torch"]}
            lines += [f"| the step, from results/latest.json | | {r['minswin_fwd_bwd_s']:.3f} | "
                      f"{r['torch_fwd_bwd_s']:.3f} |",
                      f"| the rest of the step (not GEMMs) | | {rest['numpy']:.3f} | "
                      f"{rest['torch']:.3f} |"]
    md = "\n".join(lines)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gemm.md"), "w") as f:
        f.write(md + "\n")
    with open(os.path.join(args.out, "gemm.json"), "w") as f:
        json.dump({"batch": args.batch, "threads": args.threads, "rounds": args.rounds,
                   "gemm_seconds": total, "rest_of_step_seconds": rest,
                   "date": time.strftime("%Y-%m-%d %H:%M")}, f, indent=1)
    print(md)


if __name__ == "__main__":
    main()
