"""One check of minswin on a GPU, in a few minutes: `make gpu-check`.

    python scripts/gpu_check.py                 # writes to $OUT, else ./gpu-check/
    python scripts/gpu_check.py --out DIR --skip timing

On a machine where CuPy computes on a GPU it
  1. prints the CuPy, CUDA runtime, driver and device versions;
  2. runs `pytest -m gpu` (every CuPy test on the real GPU);
  3. runs tutorial 9 (NumPy and CuPy side by side);
  4. checks NumPy vs CuPy parity of swin_micro and swinv2_digits in float64 and float32:
     logits, dx and every parameter gradient, as relative errors (gradcheck.rel_error);
  5. trains `digits_tiny` on CuPy (`minswin.train`);
  6. times Swin-T batch 8 forward and forward+backward against PyTorch CUDA eager, both
     synchronised, float32 with TF32 off on both, and their peak GPU memory
     (benchmarks/bench_swin.py's functions);
and writes everything (report.md, report.json, the pytest and tutorial logs, the training run)
to one folder. It exits 1 if a check failed. Without a GPU it prints one line saying so and
exits 0.
"""
import argparse
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
STEPS = ("versions", "pytest", "tutorial", "parity", "train", "timing")
# NumPy vs CuPy, relative error (gradcheck.rel_error) of logits, dx and every gradient:
# float64 differs by summation order only; float32 by that and cuBLAS's own blocking
PARITY_TOL = {"float64": 1e-10, "float32": 1e-4}


def versions():
    import cupy
    import numpy as np
    rt = cupy.cuda.runtime
    dev = cupy.cuda.Device()
    props = rt.getDeviceProperties(dev.id)
    name = props["name"]
    info = {"cupy": cupy.__version__, "cuda_runtime": rt.runtimeGetVersion(),
            "cuda_driver": rt.driverGetVersion(), "device_id": dev.id,
            "device": name.decode() if isinstance(name, bytes) else str(name),
            "compute_capability": dev.compute_capability,
            "device_memory_gib": props.get("totalGlobalMem", 0) / 2 ** 30,
            "numpy": np.__version__, "python": platform.python_version()}
    try:
        import torch
        info["torch"] = torch.__version__
        info["torch_cuda"] = torch.cuda.is_available()
    except ImportError:
        info["torch"] = None
    return info, True


def run_logged(cmd, log_path, timeout, env=None):
    """Run a command, its output to a file; (exit status, last line of output)."""
    with open(log_path, "w") as log:
        try:
            rc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                timeout=timeout, env=env).returncode
        except subprocess.TimeoutExpired:
            rc = f"timed out after {timeout} s"
    with open(log_path) as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    return rc, (lines[-1] if lines else "")


def pytest_gpu(out):
    rc, last = run_logged([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p",
                           "no:cacheprovider", os.path.join(ROOT, "tests")],
                          os.path.join(out, "pytest_gpu.txt"), timeout=180,
                          env=dict(os.environ, MPLBACKEND="Agg"))
    return {"exit_status": rc, "summary": last, "log": "pytest_gpu.txt"}, rc == 0


def tutorial(out):
    env = dict(os.environ, MPLBACKEND="Agg", MINSWIN_SMALL="1",
               MINSWIN_FIGURES=os.path.join(out, "tutorial_figures"))
    rc, last = run_logged([sys.executable, os.path.join(ROOT, "tutorials",
                                                        "09_numpy_and_cupy.py")],
                          os.path.join(out, "tutorial_09.txt"), timeout=120, env=env)
    return {"exit_status": rc, "last_line": last, "log": "tutorial_09.txt"}, rc == 0


# the models compared: (config, input size (H, W)); swin_micro's 36x28 input is padded,
# shifted and merged; swinv2_digits has V2's cosine attention and continuous bias
PARITY_MODELS = (("swin_micro", (36, 28)), ("swinv2_digits", (16, 16)))


def parity(dtype, name="swin_micro", size=(36, 28)):
    """rel_error of logits, dx and each gradient of one model, NumPy vs CuPy, one dtype."""
    import numpy as np

    import minswin
    from minswin.backend import to_backend
    from minswin.gradcheck import rel_error
    g = np.random.default_rng(0)
    x = g.standard_normal((2, *size, 3)).astype(dtype)      # (2, H, W, 3)
    d = g.standard_normal((2, 7)).astype(dtype)
    results = {}
    for backend in ("numpy", "cupy"):
        minswin.use(backend)
        try:
            model = minswin.create_model(name, num_classes=7, dtype=dtype, seed=3)
            model.eval()
            logits = model.forward(to_backend(x))
            dx = model.backward(to_backend(d))
            results[backend] = (logits, dx, dict(model.grads))
        finally:
            minswin.use("numpy")
    (l0, dx0, g0), (l1, dx1, g1) = results["numpy"], results["cupy"]
    errs = {"logits": rel_error(l1, l0), "dx": rel_error(dx1, dx0)}
    errs.update({f"grad {k}": rel_error(g1[k], g0[k]) for k in g0})
    worst = max(errs, key=errs.get)
    summary = {"tolerance": PARITY_TOL[dtype], "max_rel_error": errs[worst], "worst": worst,
               "logits": errs["logits"], "dx": errs["dx"], "gradients": len(g0),
               "all": errs}
    return summary, errs[worst] <= PARITY_TOL[dtype]


def train_tiny(out):
    import minswin
    minswin.use("cupy")
    try:
        t = time.perf_counter()
        res = minswin.train("digits_tiny", out=os.path.join(out, "train_digits_tiny"),
                            progress=False, log=lambda *a: None)
        seconds = time.perf_counter() - t
    finally:
        minswin.use("numpy")
    losses = [e["train_loss"] for e in res.history["epochs"]]
    # two short epochs: the check is that it learns (finite, falling, above chance), not how
    # well; benchmarks/results/train_digits.md has a full run
    ok = (all(math.isfinite(v) for v in losses + [res.test_loss]) and losses[-1] < losses[0]
          and res.test_acc > 0.1)
    return {"test_acc": res.test_acc, "test_loss": res.test_loss, "train_loss_per_epoch":
            losses, "seconds": seconds, "run": "train_digits_tiny/"}, ok


def _bench():
    spec = importlib.util.spec_from_file_location(
        "bench_swin", os.path.join(ROOT, "benchmarks", "bench_swin.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def timing(rounds=5, batch=8):
    """Swin-T batch 8, float32, minswin on CuPy vs PyTorch CUDA eager: medians in seconds."""
    bench = _bench()
    m_fwd, m_fb, m_sync = bench.minswin_case("swin_t", batch, "cupy")
    row = {"batch": batch, "rounds": rounds, "dtype": "float32", "tf32": "off"}
    try:
        import torch
        if not torch.cuda.is_available():
            raise ImportError("torch has no CUDA here")
        t_fwd, t_fb, t_sync, ref = bench.torch_case("swin_t", batch, "cupy")
        row["reference"] = f"torch {torch.__version__} eager, {ref}"
    except ImportError as err:
        t_fwd = t_fb = t_sync = None
        row["reference"] = f"none ({err})"
    fns = {"minswin_fwd_s": (m_fwd, m_sync), "minswin_fwd_bwd_s": (m_fb, m_sync)}
    if t_fwd:
        fns.update({"torch_fwd_s": (t_fwd, t_sync), "torch_fwd_bwd_s": (t_fb, t_sync)})
    for fn, sync in fns.values():                  # warm-up: kernels compiled, pools filled
        bench.timed(fn, sync)
    times = {k: [] for k in fns}
    for _ in range(rounds):                        # alternating rounds, as bench_swin.py
        for k, (fn, sync) in fns.items():
            times[k].append(bench.timed(fn, sync))
    row.update({k: statistics.median(v) for k, v in times.items()})
    if t_fwd:
        row["ratio_fwd"] = row["minswin_fwd_s"] / row["torch_fwd_s"]
        row["ratio_fwd_bwd"] = row["minswin_fwd_bwd_s"] / row["torch_fwd_bwd_s"]
    for fw in ("minswin", "torch") if t_fwd else ("minswin",):
        row[f"{fw}_peak_gpu_mib"] = bench.measure_memory(fw, "swin_t", batch, "cupy", True)
    return row, True


def report_md(report):
    v = report.get("versions", {}).get("result", {})
    lines = [f"# minswin gpu-check, {report['date']}", "",
             f"Device: {v.get('device')} (compute capability {v.get('compute_capability')}, "
             f"{v.get('device_memory_gib', 0):.0f} GiB); CuPy {v.get('cupy')}, CUDA runtime "
             f"{v.get('cuda_runtime')}, driver {v.get('cuda_driver')}; NumPy {v.get('numpy')};"
             f" torch {v.get('torch')}", "", "| step | ok | result |", "|---|---|---|"]
    for step in STEPS:
        if step == "versions" or step not in report:
            continue
        r = report[step]
        res = r.get("result", r.get("error"))
        if step == "parity":
            res = "; ".join(f"{dt}: max rel err {p['max_rel_error']:.1e} ({p['worst']}), "
                            f"logits {p['logits']:.1e}, dx {p['dx']:.1e}, {p['gradients']} "
                            f"gradients" for dt, p in res.items()) if "result" in r else res
        elif isinstance(res, dict):
            res = ", ".join(f"{k} {val:.4g}" if isinstance(val, float) else f"{k} {val}"
                            for k, val in res.items() if k != "all")
        lines.append(f"| {step} | {'yes' if r['ok'] else 'NO'} | {res} |")
    lines += ["", f"Total {report['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="gpu_check.py", description=__doc__.splitlines()[0])

    def one_line_error(message):                   # no usage block, as the minswin command
        print(f"gpu_check.py: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)
    p.error = one_line_error
    p.add_argument("--out", default=os.environ.get("OUT") or os.path.join(os.getcwd(),
                                                                           "gpu-check"),
                   help="folder for every result (default $OUT, else ./gpu-check)")
    p.add_argument("--skip", default="", help="comma-separated steps to leave out, of: "
                   + ", ".join(STEPS))
    args = p.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    if skip - set(STEPS):
        p.error(f"--skip: expected names from {', '.join(STEPS)}, got "
                f"{', '.join(sorted(skip - set(STEPS)))}")
    os.environ["CUPY_TF32"] = "0"      # full float32 GEMMs (CuPy's default), before CuPy loads
    sys.path.insert(0, ROOT)
    from minswin.backend import cupy_unavailable_reason
    reason = cupy_unavailable_reason()
    if reason is not None:
        print(f"gpu-check: no GPU to check here ({reason}); nothing was run")
        return 0
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    steps = {"versions": versions, "pytest": lambda: pytest_gpu(args.out),
             "tutorial": lambda: tutorial(args.out),
             "parity": lambda: _parity_both(), "train": lambda: train_tiny(args.out),
             "timing": timing}
    for step in STEPS:
        if step in skip:
            continue
        t = time.perf_counter()
        print(f"gpu-check: {step} ...", flush=True)
        try:
            result, ok = steps[step]()
            report[step] = {"ok": bool(ok), "result": result}
        except Exception as err:                    # recorded, and the other steps still run
            report[step] = {"ok": False, "error": f"{type(err).__name__}: {err}"}
        report[step]["seconds"] = time.perf_counter() - t
        print(f"gpu-check: {step}: {'ok' if report[step]['ok'] else 'FAILED'} "
              f"({report[step]['seconds']:.1f} s) "
              f"{json.dumps(report[step].get('result', report[step].get('error')))[:300]}",
              flush=True)
    report["seconds"] = time.perf_counter() - t0
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    md = report_md(report)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(md)
    print(md)
    failed = [s for s in STEPS if s in report and not report[s]["ok"]]
    print(f"gpu-check: {'FAILED: ' + ', '.join(failed) if failed else 'all checks passed'}; "
          f"results in {args.out}")
    return 1 if failed else 0


def _parity_both():
    out = {f"{name} {dt}": parity(dt, name, size) for name, size in PARITY_MODELS
           for dt in ("float64", "float32")}
    return {k: r for k, (r, _) in out.items()}, all(ok for _, ok in out.values())


if __name__ == "__main__":
    sys.exit(main())
