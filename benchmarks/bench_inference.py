"""Swin-T inference: peak memory (RSS) and time of one forward, with and without caches,
against PyTorch eager under torch.no_grad(), in one run on this machine.

    python benchmarks/bench_inference.py                  # batch 8 and 64, 2 rounds each
    python benchmarks/bench_inference.py --batches 8 --rounds 1

Each (framework, mode, batch) runs in its own fresh subprocess, so each peak RSS (VmHWM) is
that case's alone: the imports, the model's weights, the input and the forward. "base" is the
RSS after building the model and the input, before any forward; peak - base is what the
forward itself added. Modes:

    minswin caches    model.forward(x), the default: every module keeps its backward's cache
    minswin no_grad   `with minswin.no_grad(): model.forward(x)`: nothing kept
    torch no_grad     timm's Swin-T (or tests/torch_reference.py) under torch.no_grad()

All run with the same BLAS/OpenMP threads (--threads, default 1: the machine is shared).
Time: the median of --rounds forwards after one warm-up forward. Results go to
benchmarks/results/inference.{json,md}.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from bench_swin import peak_rss_mib, set_threads, torch_case  # noqa: E402

MODES = (("minswin", "caches"), ("minswin", "no_grad"), ("torch", "no_grad"))


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def one_case(framework, mode, batch, rounds):
    """Runs in the subprocess: build, warm up, time; returns a dict."""
    if framework == "minswin":
        import numpy as np

        import minswin
        model = minswin.create_model("swin_t").eval()
        x = np.random.default_rng(0).standard_normal((batch, 224, 224, 3)).astype(np.float32)

        def fwd():
            if mode == "no_grad":
                with minswin.no_grad():
                    model.forward(x)
            else:
                model.forward(x)
    else:
        fwd, _, _, _ = torch_case("swin_t", batch, "numpy")
    base = rss_mib()
    fwd()                                                  # warm-up (counts in the peak)
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fwd()
        times.append(time.perf_counter() - t)
    return dict(framework=framework, mode=mode, batch=batch, base_mib=base,
                peak_mib=peak_rss_mib(), seconds=statistics.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="8,64", help="comma-separated batch sizes")
    ap.add_argument("--rounds", type=int, default=2, help="timed forwards per case")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    set_threads(args.threads)
    if args.child:
        framework, mode, batch = args.child.split(":")
        if framework == "torch":
            import torch
            torch.set_num_threads(args.threads)
        print(json.dumps(one_case(framework, mode, int(batch), args.rounds)))
        return 0
    rows = []
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for batch in [int(b) for b in args.batches.split(",")]:
        for framework, mode in MODES:
            cmd = [sys.executable, __file__, "--child", f"{framework}:{mode}:{batch}",
                   "--rounds", str(args.rounds), "--threads", str(args.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if out.returncode:
                print(f"{framework} {mode} batch {batch}: failed\n{out.stderr[-2000:]}",
                      file=sys.stderr)
                continue
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"batch {batch:>3}  {framework:<8}{mode:<9} peak {row['peak_mib']:8.0f} MiB "
                  f"(base {row['base_mib']:6.0f}, "
                  f"forward +{row['peak_mib'] - row['base_mib']:6.0f})"
                  f"  time {row['seconds']:7.2f} s", flush=True)
    lines = ["| batch | framework | mode | peak RSS MiB | forward adds MiB | time s | "
             "time / torch |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = [q for q in rows if q["batch"] == r["batch"] and q["framework"] == "torch"]
        ratio = f"{r['seconds'] / ref[0]['seconds']:.2f}" if ref else "-"
        lines.append(f"| {r['batch']} | {r['framework']} | {r['mode']} | {r['peak_mib']:.0f} | "
                     f"{r['peak_mib'] - r['base_mib']:.0f} | {r['seconds']:.2f} | {ratio} |")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "inference.json"), "w") as f:
        json.dump(dict(threads=args.threads, rounds=args.rounds, rows=rows), f, indent=1)
    with open(os.path.join(HERE, "results", "inference.md"), "w") as f:
        f.write(f"Swin-T forward, {args.threads} thread(s), median of {args.rounds} rounds "
                "(shared machine: timings under load)\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
