"""One check of minswin on a GPU, in under 5 minutes: `make gpu-check`.

    make gpu-check                                  # python3 scripts/gpu_check.py
    python scripts/gpu_check.py --out DIR           # default $OUT, else ./gpu-check/
    python scripts/gpu_check.py --skip timing --budget 600

Any Python with CuPy, PyTorch built for CUDA, pytest and scikit-learn runs it from a clone:
the system Python of a GPU machine image, say. It creates no venv and downloads nothing; in a
clone, `pip install -e ".[gpu-cuda12]"` brings all but PyTorch.

On a machine where CuPy computes on a GPU it
  1. versions: CuPy, CUDA runtime and driver, the device; then it times one forward+backward
     of swin_micro on CuPy, first call (kernels compiled) and warm: the unit the step limits
     are measured in;
  2. pytest: `pytest -m gpu` (every CuPy test on the real GPU);
  3. tutorial: tutorial 9 (NumPy and CuPy side by side), its figures in the results folder;
  4. parity: NumPy vs CuPy on swin_micro and swinv2_digits in float64 and float32: logits, dx
     and every parameter gradient, as relative errors (gradcheck.rel_error);
  5. train: `digits_tiny` trained on CuPy (`minswin.train`): it must learn;
  6. timing: Swin-T batch 8, float32 with TF32 off, against PyTorch CUDA eager (required):
     forward in eval mode on both sides (under minswin.no_grad where minswin has one, as
     torch.no_grad), forward+backward in training mode on both, every call synchronised;
     and the peak GPU memory of each (benchmarks/bench_swin.py's memory child).
The report (report.json, report.md) is rewritten after every step, so a check stopped early
still leaves what it found. Each step's time limit is its expected cost in measured units
(with a first-compile allowance), within what is left of the whole check's budget (--budget,
300 s); a step past its limit fails and the next one starts.

Exit status: 0 when every step ran and passed (a step left out with --skip is named in the
report's status); 1 when one failed or could not run, or when
there is a GPU but CuPy (or a package the check needs) is missing or cannot use it: then one
line says the fix; 2 for a wrong argument. Without a GPU at all: one line, and 0.
"""
import argparse
import contextlib
import glob
import importlib.util
import json
import math
import os
import platform
import shutil
import signal
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
BUDGET_S = 300.0
# Expected cost of each step in units: one warm forward+backward of swin_micro (batch 2,
# float32) on the same backend, measured by the versions step. The ratios were measured on
# the CPU (the CuPy stand-in, i.e. NumPy); a GPU's will differ, hence the SAFETY factor and
# the budget's slack (see step_limit). On the stand-in (2 busy cores, unit 0.75 s) the steps
# took 194, 11, 18 and 22 units; timing has no CPU figure (it needs PyTorch CUDA): 400 is a
# first estimate. report.json records each step's seconds and the unit, to correct these after
# the first GPU run. COMPILES: the first-call allowances a step may need for new CuPy kernels
# (a fresh process reads CuPy's on-disk kernel cache, so mostly it does not).
UNITS = {"pytest": 200.0, "tutorial": 12.0, "parity": 20.0, "train": 25.0, "timing": 400.0}
COMPILES = {"pytest": 2.0, "tutorial": 1.0, "parity": 1.0, "train": 1.0, "timing": 2.0}
SAFETY = 4.0
MIN_LIMIT_S = 20.0
FIRST_CALL_LIMIT_S = 120.0       # the versions step: the first kernels compile here
# what the steps import; (module, the package that brings it)
NEEDS = (("numpy", "numpy"), ("scipy", "scipy"), ("matplotlib", "matplotlib"),
         ("safetensors", "safetensors"), ("tqdm", "tqdm"), ("pytest", "pytest"),
         ("sklearn", "scikit-learn"))
PIP = 'pip install -e ".[gpu-cuda12]" in this clone (".[gpu-cuda13]" for CUDA 13)'


# ---------------------------------------------------------------------------- is there a GPU

def gpu_present(root="/"):
    """Evidence, in words, that an NVIDIA GPU is given to this machine; None if there is none.

    Looked for without CuPy: the driver's device files (/dev/nvidia0, ...), `nvidia-smi -L`,
    and, where no driver is loaded, an NVIDIA display device on the PCI bus. (Where the driver
    is loaded but no device file exists, as in a container given no GPU, there is none.)"""
    nodes = sorted(p for p in glob.glob(os.path.join(root, "dev", "nvidia*"))
                   if os.path.basename(p)[6:].isdigit())
    if nodes:
        return f"an NVIDIA GPU is here ({nodes[0]})"
    smi = shutil.which("nvidia-smi")
    if smi and root == "/":
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True,
                                 timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        gpus = [ln for ln in out.splitlines() if ln.startswith("GPU ")]
        if gpus:
            return f"nvidia-smi lists {len(gpus)} GPU(s): {gpus[0]}"
    if os.path.exists(os.path.join(root, "proc", "driver", "nvidia")):
        return None
    for dev in sorted(glob.glob(os.path.join(root, "sys", "bus", "pci", "devices", "*"))):
        try:
            with open(os.path.join(dev, "vendor")) as f:
                vendor = f.read().strip()
            with open(os.path.join(dev, "class")) as f:
                cls = f.read().strip()
        except OSError:
            continue
        if vendor == "0x10de" and cls.startswith("0x03"):
            return (f"an NVIDIA GPU is on the PCI bus ({os.path.basename(dev)}) but no NVIDIA "
                    f"driver is loaded: install the driver (nvidia-smi must list the GPU)")
    return None


def missing_packages():
    """The packages of NEEDS this Python cannot import, by their pip names."""
    return [pkg for mod, pkg in NEEDS if importlib.util.find_spec(mod) is None]


# ---------------------------------------------------------------------------- the steps

def _sync():
    import cupy
    cupy.cuda.Device().synchronize()


def calibrate(batch=2, rounds=3):
    """(first call, warm median) seconds of one swin_micro forward+backward on CuPy."""
    import numpy as np

    import minswin
    minswin.use("cupy")
    try:
        model = minswin.create_model("swin_micro", num_classes=10, seed=0).train()
        x = minswin.to_backend(np.random.default_rng(0).standard_normal(
            (batch, 32, 32, 3)).astype(np.float32))
        import cupy
        d = cupy.ones((batch, 10), dtype=cupy.float32)

        def step():
            _sync()
            t = time.perf_counter()
            model.zero_grad()
            model.forward(x)
            model.backward(d)
            _sync()
            return time.perf_counter() - t
        first = step()
        warm = statistics.median(step() for _ in range(rounds))
    finally:
        minswin.use("numpy")
    return first, warm


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
            "numpy": np.__version__, "python": platform.python_version(),
            "executable": sys.executable}
    try:
        import torch
        info["torch"] = torch.__version__
        info["torch_cuda"] = torch.cuda.is_available()
    except ImportError:
        info["torch"] = None
    first, warm = calibrate()
    info["unit_first_s"], info["unit_s"] = first, warm
    ok = math.isfinite(warm) and warm > 0
    return info, ok


def run_logged(cmd, log_path, env):
    """Run a command, its output to a file; (exit status, last line of output). A step's
    time limit (an alarm) stops it: subprocess.run kills the child on the way out."""
    with open(log_path, "w") as log:
        rc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env=env).returncode
    with open(log_path) as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    return rc, (lines[-1] if lines else "")


def child_env(**extra):
    """The environment of the steps' subprocesses (main put this clone first on PYTHONPATH)."""
    return dict(os.environ, MPLBACKEND="Agg", **extra)


def pytest_gpu(out):
    rc, last = run_logged([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p",
                           "no:cacheprovider", os.path.join(ROOT, "tests")],
                          os.path.join(out, "pytest_gpu.txt"), child_env())
    counts = {}
    for part in last.strip("= ").split(" in ")[0].split(", "):
        n, _, what = part.partition(" ")
        if n.isdigit():
            counts[what] = int(n)
    return ({"exit_status": rc, "summary": last, "log": "pytest_gpu.txt", **counts},
            rc == 0 and counts.get("passed", 0) > 0)


def tutorial(out):
    env = child_env(MINSWIN_SMALL="1", MINSWIN_FIGURES=os.path.join(out, "tutorial_figures"))
    rc, last = run_logged([sys.executable, os.path.join(ROOT, "tutorials",
                                                        "09_numpy_and_cupy.py")],
                          os.path.join(out, "tutorial_09.txt"), env)
    return ({"exit_status": rc, "last_line": last, "log": "tutorial_09.txt",
             "figures": "tutorial_figures/"},
            rc == 0 and last.endswith("all checks passed"))


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


def parity_all():
    out = {f"{name} {dt}": parity(dt, name, size) for name, size in PARITY_MODELS
           for dt in ("float64", "float32")}
    return {k: r for k, (r, _) in out.items()}, all(ok for _, ok in out.values())


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


class NoCudaTorch(RuntimeError):
    pass


def torch_cuda():
    """The torch module, if it is a CUDA build that sees the GPU; else NoCudaTorch, why."""
    try:
        import torch
    except ImportError as err:
        raise NoCudaTorch(f"PyTorch is not installed here ({err}): the timing compares with "
                          "PyTorch CUDA eager; install a CUDA build of torch") from None
    if not torch.cuda.is_available():
        raise NoCudaTorch(f"torch {torch.__version__} has no CUDA here (CUDA build: "
                          f"{torch.version.cuda}): the timing compares with PyTorch CUDA "
                          "eager; install a CUDA build of torch")
    return torch


def minswin_swin_t(batch):
    """Swin-T on CuPy: (forward in eval mode, forward+backward in training mode, how the
    forward ran). The forward runs under minswin.no_grad where minswin has one (a forward
    that keeps no caches for a backward), as torch's runs under torch.no_grad."""
    import numpy as np

    import minswin
    minswin.use("cupy")
    try:
        import cupy
        model = minswin.create_model("swin_t", drop_path_rate=0.0)
        g = np.random.default_rng(0)
        x = cupy.asarray(g.standard_normal((batch, 224, 224, 3), dtype=np.float32))
        dout = cupy.asarray(g.standard_normal((batch, 1000), dtype=np.float32))
    finally:
        minswin.use("numpy")
    no_grad = getattr(minswin, "no_grad", None)

    def fwd():
        model.eval()
        with no_grad() if no_grad else contextlib.nullcontext():
            model.forward(x)

    def fwd_bwd():
        model.train()
        model.zero_grad()
        model.forward(x)
        model.backward(dout)
    how = "eval, minswin.no_grad()" if no_grad else \
        "eval (minswin has no no_grad yet: the forward keeps its caches)"
    return fwd, fwd_bwd, how


def torch_swin_t(torch, batch):
    """The PyTorch reference on CUDA, as benchmarks/bench_swin.py builds it (timm's Swin-T,
    else tests/torch_reference.py): (forward eval + no_grad, forward+backward train, name)."""
    bench = _bench()
    torch.backends.cuda.matmul.allow_tf32 = False      # full float32, as CuPy (CUPY_TF32=0)
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    try:
        import timm
    except Exception:                  # not installed, or built for another torch
        timm = None
    if timm is not None:
        model, name = timm.create_model("swin_tiny_patch4_window7_224", drop_path_rate=0.0), \
            "timm swin_tiny_patch4_window7_224"
        x = torch.randn(batch, 3, 224, 224)
    else:
        model, name = bench._torch_reference_module().SwinTransformer(), \
            "tests/torch_reference.py"
        x = torch.randn(batch, 224, 224, 3)
    model, x = model.to("cuda"), x.to("cuda")
    dout = torch.randn(batch, 1000, device="cuda")

    def fwd():
        model.eval()
        with torch.no_grad():
            model(x)

    def fwd_bwd():
        model.train()
        model.zero_grad(set_to_none=True)
        model(x).backward(dout)
    return fwd, fwd_bwd, name


def timing(rounds=5, batch=8):
    """Swin-T batch 8, float32, minswin on CuPy vs PyTorch CUDA eager: medians in seconds."""
    torch = torch_cuda()                           # required: no baseline, no timing step
    bench = _bench()
    bench.PAUSE_S = 0.05                           # the GPU has no CPU threads to settle
    m_fwd, m_fb, how = minswin_swin_t(batch)
    t_fwd, t_fb, ref = torch_swin_t(torch, batch)
    fns = {"minswin_fwd_s": (m_fwd, _sync), "torch_fwd_s": (t_fwd, torch.cuda.synchronize),
           "minswin_fwd_bwd_s": (m_fb, _sync), "torch_fwd_bwd_s": (t_fb, torch.cuda.synchronize)}
    for fn, sync in fns.values():                  # warm-up: kernels compiled, pools filled
        bench.timed(fn, sync)
    times = {k: [] for k in fns}
    for _ in range(rounds):                        # alternating rounds, as bench_swin.py
        for k, (fn, sync) in fns.items():
            times[k].append(bench.timed(fn, sync))
    row = {"batch": batch, "rounds": rounds, "dtype": "float32", "tf32": "off",
           "minswin_forward": how, "torch_forward": "eval, torch.no_grad()",
           "reference": f"torch {torch.__version__} eager, {ref}"}
    row.update({k: statistics.median(v) for k, v in times.items()})
    row["ratio_fwd"] = row["minswin_fwd_s"] / row["torch_fwd_s"]
    row["ratio_fwd_bwd"] = row["minswin_fwd_bwd_s"] / row["torch_fwd_bwd_s"]
    for fw in ("minswin", "torch"):                # forward+backward, each in a fresh process
        row[f"{fw}_peak_gpu_mib"] = bench.measure_memory(fw, "swin_t", batch, "cupy", True)
    ok = (all(math.isfinite(row[k]) and row[k] > 0 for k in times)
          and all(row[f"{fw}_peak_gpu_mib"] for fw in ("minswin", "torch")))
    return row, ok


# ---------------------------------------------------------------------------- limits, report

class StepTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds):
    """Raise StepTimeout in this (main) thread after `seconds`; a subprocess being waited
    for is killed by subprocess.run on the way out."""
    def expire(signum, frame):
        raise StepTimeout(f"ran past its limit of {seconds:.0f} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def step_limit(step, later, unit, first, left):
    """(seconds, how) a step may take: SAFETY x its expected cost (UNITS of the measured warm
    unit, plus COMPILES first-call allowances), or more where the budget left after the later
    steps' expected costs allows; never more than what is left of the budget."""
    allowance = max(first - unit, 0.0)

    def expected(s):
        return UNITS[s] * unit + COMPILES[s] * allowance
    own = max(MIN_LIMIT_S, SAFETY * expected(step))
    spare = left - sum(expected(s) for s in later)
    limit = min(left, max(own, spare))
    return limit, (f"{UNITS[step]:g} units of {unit:.3g} s + {COMPILES[step]:g} x "
                   f"{allowance:.3g} s first-call allowance, expected {expected(step):.0f} s;"
                   f" limit {limit:.0f} s of {left:.0f} s left")


def write_report(report, out):
    """report.json and report.md, rewritten whole (a temporary file renamed over the old)."""
    for name, text in (("report.json", json.dumps(report, indent=1) + "\n"),
                       ("report.md", report_md(report))):
        tmp = os.path.join(out, f".{name}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(out, name))


def report_md(report):
    v = report.get("versions", {}).get("result", {})
    lines = [f"# minswin gpu-check, {report['date']}", "",
             f"Device: {v.get('device')} (compute capability {v.get('compute_capability')}, "
             f"{v.get('device_memory_gib', 0):.0f} GiB); CuPy {v.get('cupy')}, CUDA runtime "
             f"{v.get('cuda_runtime')}, driver {v.get('cuda_driver')}; NumPy {v.get('numpy')};"
             f" torch {v.get('torch')}", "", f"Status: {report['status']}", "",
             "| step | ok | seconds | result |", "|---|---|---|---|"]
    for step in STEPS:
        if step not in report:
            continue
        r = report[step]
        res = r.get("result", r.get("error"))
        if step == "parity" and "result" in r:
            res = "; ".join(f"{k}: max rel err {p['max_rel_error']:.1e} ({p['worst']}), "
                            f"logits {p['logits']:.1e}, dx {p['dx']:.1e}, {p['gradients']} "
                            f"gradients" for k, p in res.items())
        elif isinstance(res, dict):
            res = ", ".join(f"{k} {val:.4g}" if isinstance(val, float) else f"{k} {val}"
                            for k, val in res.items() if k != "all")
        ok = {True: "yes", False: "NO"}.get(r.get("ok"), "running")
        lines.append(f"| {step} | {ok} | {r.get('seconds', 0):.1f} | {res} |")
    lines += ["", f"Total {report['seconds']:.0f} s of a {report['budget_s']:.0f} s budget."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- main

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
                   + ", ".join(s for s in STEPS if s != "versions"))
    p.add_argument("--budget", default=BUDGET_S, type=float,
                   help=f"seconds for the whole check (default {BUDGET_S:.0f})")
    args = p.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    if skip - set(STEPS[1:]):
        p.error(f"--skip: expected names from {', '.join(STEPS[1:])}, got "
                f"{', '.join(sorted(skip - set(STEPS[1:])))}")
    if not args.budget > 0:
        p.error(f"--budget: expected seconds > 0, got {args.budget:g}")
    os.environ["CUPY_TF32"] = "0"      # full float32 GEMMs (CuPy's default), before CuPy loads
    sys.path.insert(0, ROOT)           # this clone's minswin, here and in every subprocess
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    from minswin.backend import cupy_unavailable_reason
    reason = cupy_unavailable_reason()
    if reason is not None:
        gpu = gpu_present()
        if gpu is None:
            print(f"gpu-check: no GPU to check here ({reason}); nothing was run")
            return 0
        print(f"gpu-check: FAILED: {gpu}; {sys.executable}: {reason}", file=sys.stderr)
        return 1
    missing = missing_packages()
    if missing:
        print(f"gpu-check: FAILED: {sys.executable} lacks {', '.join(missing)}: {PIP} brings "
              f"them (or pip install {' '.join(missing)})", file=sys.stderr)
        return 1
    return run_steps(args.out, [s for s in STEPS if s not in skip], args.budget)


def run_steps(out, steps, budget):
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    skipped = [s for s in STEPS if s not in steps]
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "budget_s": budget,
              "steps": steps, "skipped": skipped, "seconds": 0.0, "status": "running"}
    work = {"versions": versions, "pytest": lambda: pytest_gpu(out),
            "tutorial": lambda: tutorial(out), "parity": parity_all,
            "train": lambda: train_tiny(out), "timing": timing}
    unit = first = None
    for i, step in enumerate(steps):
        left = budget - (time.perf_counter() - t0)
        if step == "versions":
            limit, how = min(left, FIRST_CALL_LIMIT_S), "the first kernels compile here"
        elif unit is None:
            limit, how = 0.0, "no measured unit (the versions step failed)"
        else:
            limit, how = step_limit(step, steps[i + 1:], unit, first, left)
        report[step] = {"ok": None, "limit_s": limit, "limit": how}
        report["status"] = f"running {step}"
        write_report(report, out)
        print(f"gpu-check: {step} ... (limit {limit:.0f} s)", flush=True)
        t = time.perf_counter()
        try:
            if limit < 1.0:
                raise StepTimeout(f"not run: {how}" if unit is None else
                                  f"not run: the {budget:.0f} s budget is spent")
            with time_limit(limit):
                result, ok = work[step]()
            report[step].update(ok=bool(ok), result=result)
        except Exception as err:                    # recorded, and the other steps still run
            report[step].update(ok=False, error=f"{type(err).__name__}: {err}")
        report[step]["seconds"] = time.perf_counter() - t
        if step == "versions" and report[step]["ok"]:
            unit, first = report[step]["result"]["unit_s"], report[step]["result"][
                "unit_first_s"]
        report["seconds"] = time.perf_counter() - t0
        write_report(report, out)
        r = report[step]
        print(f"gpu-check: {step}: {'ok' if r['ok'] else 'FAILED'} ({r['seconds']:.1f} s) "
              f"{json.dumps(r.get('result', r.get('error')))[:300]}", flush=True)
    failed = [s for s in steps if not report[s]["ok"]]
    report["status"] = (f"FAILED: {', '.join(failed)}" if failed else "all checks passed") + (
        f" (not run, as asked: {', '.join(skipped)})" if skipped else "")
    report["seconds"] = time.perf_counter() - t0
    write_report(report, out)
    print(report_md(report))
    print(f"gpu-check: {report['status']}; results in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
