"""minswin vs PyTorch eager on this machine: time and peak memory, one run, same threads.

    python benchmarks/bench_swin.py                 # Swin-T batch 1 and 8, stage-1 block,
                                                    # the swin_digits training step
    python benchmarks/bench_swin.py --quick         # Swin-T batch 8, the block, the digits
    python benchmarks/bench_swin.py --case swin_t:8 --rounds 3 --no-memory   # one case
    python benchmarks/bench_swin.py --backend cupy  # on a GPU, against torch CUDA

Both of minswin's tiers are timed (minswin.use_fast): the fast tier, which the layers run by
default on NumPy, and the plain tier (minswin/ops), whose ratios tell a learner what the fast
kernels buy. `--tiers fast` times the fast tier alone; `--tiers fast,untuned` times it with
its GEMM layouts and block sizes as timed on this machine (minswin/fast/tuning.py; run
`minswin tune` first on a quiet machine) and with its table's defaults, in the same rounds.
The processor, NumPy's BLAS and its kernel (threadpoolctl), and the load average are printed
with the figures. The cases: Swin-T at 224 (forward, and
forward+backward); its stage-1 shifted block; and the learner-sized workload, one training
step of `swin_digits` at batch 64 as `minswin train` runs it (forward, label-smoothed
cross-entropy, backward, gradient clipping, AdamW), against the same step in PyTorch
(tests/torch_reference.py built from the same config, torch's AdamW).

Timing: both frameworks are loaded in one process and measured in alternating rounds (so a
noisy neighbour hurts both alike; minswin's tiers take turns at coming first after PyTorch);
each figure is the median of the rounds, the ratio is minswin / torch (below 1 means minswin
is faster). Each timed call starts after a 0.25 s pause (see `timed`). Peak memory: each
(framework, case) runs again in a fresh subprocess that reports its peak RSS (ru_maxrss), so
one framework's allocations cannot hide in the other's.

The PyTorch reference is timm's Swin-T when timm is importable, else the plain PyTorch Swin
written from SPEC in tests/torch_reference.py (same maths, official code style). torch is never
a dependency of minswin: without it, minswin's own figures are reported alone.
Results go to benchmarks/results/latest.{json,md}.
"""
import argparse
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def set_threads(n):
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


# ---------------------------------------------------------------------------- cases

DIGITS_CLASSES = 10


def minswin_digits_step(batch, xp):
    """One `minswin train` step of swin_digits: (forward, training step) closures."""
    import numpy as np

    from minswin.training import build_model, build_optimizer, make_config, train_step
    cfg = make_config("digits")
    model = build_model(cfg, DIGITS_CLASSES).train()
    optimizer = build_optimizer(cfg, model)
    rng = np.random.default_rng(0)
    c = model.config
    x = xp.asarray(rng.standard_normal((batch, c.img_size, c.img_size, c.in_chans),
                                       dtype=np.float32))
    y = xp.asarray(rng.integers(0, DIGITS_CLASSES, batch))

    def fwd():
        model.forward(x)

    def step():
        train_step(model, optimizer, x, y, lr=cfg.lr, label_smoothing=cfg.label_smoothing,
                   clip_grad=cfg.clip_grad)
    return fwd, step


def minswin_case(case, batch, backend):
    import numpy as np

    import minswin
    from minswin.model import SwinTransformerBlock
    minswin.use(backend)
    xp = minswin.backend.default_xp()
    sync = (lambda: xp.cuda.Device().synchronize()) if backend == "cupy" else None
    rng = np.random.default_rng(0)
    if case == "digits":
        return (*minswin_digits_step(batch, xp), sync)
    if case == "swin_t":
        # no stochastic depth, as the timm model below: both run the same network
        model = minswin.create_model("swin_t", drop_path_rate=0.0).train()
        x = xp.asarray(rng.standard_normal((batch, 224, 224, 3), dtype=np.float32))
        dout = xp.asarray(rng.standard_normal((batch, 1000), dtype=np.float32))
    else:   # the stage-1 shifted block of Swin-T
        model = SwinTransformerBlock(96, (56, 56), 3, 7, 3, 4.0, 0.0, rng, np.float32).train()
        x = xp.asarray(rng.standard_normal((batch, 56, 56, 96), dtype=np.float32))
        dout = xp.asarray(rng.standard_normal((batch, 56, 56, 96), dtype=np.float32))

    def fwd():
        model.forward(x)

    def fwd_bwd():
        model.zero_grad()
        model.forward(x)
        model.backward(dout)
    return fwd, fwd_bwd, sync


def _torch_reference_module():
    spec = importlib.util.spec_from_file_location("torch_reference",
                                                  os.path.join(ROOT, "tests",
                                                               "torch_reference.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def torch_digits_step(batch, device):
    """The same swin_digits training step in PyTorch (the plain reference Swin, same config)."""
    import torch
    F = torch.nn.functional

    from minswin.configs import get_config
    from minswin.training import make_config
    cfg = make_config("digits")
    config = get_config(cfg.model, num_classes=DIGITS_CLASSES)
    model = _torch_reference_module().from_config(config).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x = torch.randn(batch, config.img_size, config.img_size, config.in_chans, device=device)
    y = torch.randint(0, DIGITS_CLASSES, (batch,), device=device)

    def fwd():
        with torch.no_grad():
            model(x)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y, label_smoothing=cfg.label_smoothing)
        loss.item()                                    # minswin's step reads its loss too
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        optimizer.step()
    return fwd, step


def torch_case(case, batch, backend):
    import torch
    device = "cuda" if backend == "cupy" else "cpu"
    if device == "cuda":          # full float32 GEMMs, as CuPy's default (CUPY_TF32 unset)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    sync = torch.cuda.synchronize if device == "cuda" else None
    if case == "digits":
        return (*torch_digits_step(batch, device), sync,
                "plain (tests/torch_reference.py), torch.optim.AdamW")
    try:
        import timm
        name = "timm"
    except Exception:
        timm, name = None, "plain (tests/torch_reference.py)"
    if case == "swin_t":
        if timm is not None:
            model = timm.create_model("swin_tiny_patch4_window7_224", drop_path_rate=0.0)
            x = torch.randn(batch, 3, 224, 224)
        else:
            ref = _torch_reference_module()
            model = ref.SwinTransformer()
            x = torch.randn(batch, 224, 224, 3)
        dout = torch.randn(batch, 1000)
    else:
        if timm is not None:
            from timm.models.swin_transformer import SwinTransformerBlock
            model = SwinTransformerBlock(96, (56, 56), num_heads=3, window_size=7, shift_size=3)
        else:
            ref = _torch_reference_module()
            model = ref.SwinBlock(96, (56, 56), 3, 7, 3)
        x = torch.randn(batch, 56, 56, 96)
        dout = torch.randn(batch, 56, 56, 96)
    model = model.to(device).train()
    x, dout = x.to(device), dout.to(device)
    x.requires_grad_(True)

    def fwd():
        with torch.no_grad():
            model(x)

    def fwd_bwd():
        model.zero_grad(set_to_none=True)
        model(x).backward(dout)
    sync = torch.cuda.synchronize if device == "cuda" else None
    return fwd, fwd_bwd, sync, name


PAUSE_S = 0.25


def timed(fn, sync):
    """Seconds for fn(), after a pause: the idle threads of whatever ran before (PyTorch's
    OpenMP pool and OpenBLAS both spin-wait for a while after their work) go to sleep first,
    so no round starts while the other framework's threads still hold the cores.

    On a GPU (`sync` given) the device is synchronised before the clock starts (nothing queued
    earlier is counted) and before it stops (a GPU call returns when its kernels are queued,
    not when they are done: without this the figure is the launch time)."""
    time.sleep(PAUSE_S)
    if sync:
        sync()
    t = time.perf_counter()
    fn()
    if sync:
        sync()
    return time.perf_counter() - t


def peak_rss_mib():
    """Peak resident memory of this process (VmHWM; unlike ru_maxrss it is not inherited from
    the parent across fork/exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------- memory subprocess

def cupy_peak_tracker(cupy):
    """A function returning the peak bytes in use in CuPy's memory pool so far.

    The pool reports only what is in use now (used_bytes) and what it holds (total_bytes,
    which includes freed blocks it keeps), so the peak is recorded by wrapping its malloc.
    This is what torch.cuda.max_memory_allocated reports for PyTorch's caching allocator.
    """
    pool = cupy.get_default_memory_pool()
    peak = [pool.used_bytes()]

    def malloc(nbytes):
        mem = pool.malloc(nbytes)
        peak[0] = max(peak[0], pool.used_bytes())
        return mem
    cupy.cuda.set_allocator(malloc)
    return lambda: peak[0]


def memory_child(framework, case, batch, backend):
    """Run one fwd+bwd (after a warm-up) and print this process's peak memory in MiB: host
    RSS, and on a GPU the peak bytes allocated on the device (CuPy's pool / torch)."""
    gpu_peak = None
    if framework == "minswin":
        if backend == "cupy":
            import cupy
            gpu_peak = cupy_peak_tracker(cupy)
        _, fwd_bwd, sync = minswin_case(case, batch, backend)
    else:
        import torch
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
        _, fwd_bwd, sync, _ = torch_case(case, batch, backend)
        if backend == "cupy":
            torch.cuda.reset_peak_memory_stats()
            gpu_peak = torch.cuda.max_memory_allocated
    fwd_bwd()
    fwd_bwd()
    if sync:
        sync()
    print(json.dumps({"peak_rss_mib": peak_rss_mib(),
                      "peak_gpu_mib": None if gpu_peak is None else gpu_peak() / 2 ** 20}))


def measure_memory(framework, case, batch, backend, no_tune):
    """Peak memory in MiB of one fwd+bwd in a fresh process: device memory on a GPU (the
    column is then GPU memory, not host RSS), host RSS on the CPU."""
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", framework, case,
           str(batch), "--backend", backend] + (["--no-tune"] if no_tune else [])
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if out.returncode:
        return None
    got = json.loads(out.stdout.strip().splitlines()[-1])
    return got["peak_gpu_mib"] if backend == "cupy" else got["peak_rss_mib"]


# ---------------------------------------------------------------------------- main

def gemm_gflops(backend, n=2048, reps=5):
    """Sustained float32 GEMM rate of the array library on this machine (the 'peak')."""
    import numpy as np

    import minswin
    minswin.use(backend)
    xp = minswin.backend.default_xp()
    a = xp.asarray(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
    xp.matmul(a, a)
    sync = xp.cuda.Device().synchronize if backend == "cupy" else None
    best = min(timed(lambda: xp.matmul(a, a), sync) for _ in range(reps))
    return 2 * n ** 3 / best / 1e9


ALL_CASES = [("swin_t", 1), ("swin_t", 8), ("block", 8), ("digits", 64)]
QUICK_CASES = [("swin_t", 8), ("block", 8), ("digits", 64)]


def parse_case(text):
    """'swin_t:8' -> ('swin_t', 8); a clear error otherwise."""
    name, _, batch = text.partition(":")
    if name not in ("swin_t", "block", "digits") or not batch.isdigit() or int(batch) < 1:
        raise argparse.ArgumentTypeError(f"expected swin_t:B, block:B or digits:B with B >= 1, "
                                         f"got {text!r}")
    return name, int(batch)


def run(args):
    import numpy as np

    have_torch = importlib.util.find_spec("torch") is not None
    if have_torch:
        import torch
        torch.set_num_threads(args.threads)
    rows, ref_name = [], {}
    cases = args.case or (QUICK_CASES if args.quick else ALL_CASES)
    tiers = list(args.tiers)
    load_before = load_average()
    from minswin.fast import tuning
    blas = tuning.blas_info()
    print(f"processor: {tuning.cpu_model()}; NumPy's BLAS: {blas['blas']} {blas['version']} "
          f"({blas['kernel']} kernels); load average {load_before}", flush=True)
    peak = gemm_gflops(args.backend)
    from minswin.configs import get_config
    from minswin.flops import model_flops
    for case, batch in cases:
        print(f"-- {case} batch {batch}", flush=True)
        m_fwd, m_fb, m_sync = minswin_case(case, batch, args.backend)
        t_fwd = t_fb = None
        if have_torch:
            t_fwd, t_fb, t_sync, ref_name[case] = torch_case(case, batch, args.backend)
        # warm-up all, then alternate: each tier of minswin, then torch, in every round
        for tier in tiers:
            use_tier(tier)
            m_fb()
        if t_fb:
            t_fb()
        res = {k: [] for k in ("t_fwd", "t_fb", *(f"{t}_{k}" for t in tiers
                                                   for k in ("fwd", "fb")))}
        for r in range(args.rounds):
            # minswin's tiers in turn first: the call right after PyTorch's runs slower (on the
            # digits step at load 3-4: 0.59 s first, 0.38 s second, whichever tier it was)
            order = tiers[r % len(tiers):] + tiers[:r % len(tiers)]
            for tier in order:
                use_tier(tier)
                res[f"{tier}_fwd"].append(timed(m_fwd, m_sync))
            if t_fwd:
                res["t_fwd"].append(timed(t_fwd, t_sync))
            for tier in order:
                use_tier(tier)
                res[f"{tier}_fb"].append(timed(m_fb, m_sync))
            if t_fb:
                res["t_fb"].append(timed(t_fb, t_sync))
        use_tier(None)
        med = {k: statistics.median(v) if v else None for k, v in res.items()}
        first = next(iter(tiers))
        row = {"case": case, "batch": batch, "torch_fwd_s": med["t_fwd"],
               "torch_fwd_bwd_s": med["t_fb"],
               # the default tier's figures under the names earlier results used
               "minswin_fwd_s": med[f"{first}_fwd"], "minswin_fwd_bwd_s": med[f"{first}_fb"]}
        for tier in tiers:
            row[f"{tier}_fwd_s"], row[f"{tier}_fwd_bwd_s"] = med[f"{tier}_fwd"], med[f"{tier}_fb"]
            if med["t_fwd"]:
                row[f"{tier}_ratio_fwd"] = med[f"{tier}_fwd"] / med["t_fwd"]
                row[f"{tier}_ratio_fwd_bwd"] = med[f"{tier}_fb"] / med["t_fb"]
        if med["t_fwd"]:
            row["ratio_fwd"] = row[f"{first}_ratio_fwd"]
            row["ratio_fwd_bwd"] = row[f"{first}_ratio_fwd_bwd"]
        if case == "swin_t":
            macs = model_flops(get_config("swin_t")) * batch
            row["gemm_fraction_fwd_bwd"] = 3 * 2 * macs / row["minswin_fwd_bwd_s"] / 1e9 / peak
        if not args.no_memory:
            row["minswin_peak_rss_mib"] = measure_memory("minswin", case, batch, args.backend,
                                                           args.no_tune)
            if have_torch:
                row["torch_peak_rss_mib"] = measure_memory("torch", case, batch, args.backend,
                                                             args.no_tune)
        rows.append(row)
        print(json.dumps(row), flush=True)
        del m_fwd, m_fb, t_fwd, t_fb
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {cpu_model()}",
            "cpu": tuning.cpu_model(),
            "numpy_blas": f"{blas['blas']} {blas['version']} ({blas['kernel']} kernels, "
                          f"{blas['threads']} threads)",
            "torch_blas": torch_blas() if have_torch else None,
            "tuning": tuning_state(tuning),
            "load_average": [load_before, load_average()],
            "threads": args.threads, "backend": args.backend, "rounds": args.rounds,
            "numpy": np.__version__, "torch": (__import__("torch").__version__
                                               if have_torch else None),
            "reference": ref_name, "gemm_float32_gflops": peak, "tiers": list(tiers),
            "process_tuning": "off" if args.no_tune else "on (minswin.runtime)",
            "date": time.strftime("%Y-%m-%d %H:%M")}
    return meta, rows


# the tiers of minswin timed: (use_fast, tuning of the fast tier's GEMM layouts and blocks)
TIERS = {"fast": (True, None),          # as the layers run by default: tuned (MINSWIN_TUNE)
         "untuned": (True, False),      # the fast tier with its table's defaults, untimed
         "plain": (False, None)}        # minswin/ops


def use_tier(tier):
    """Run minswin's layers on `tier` (a key of TIERS; None: back to the defaults)."""
    import minswin
    from minswin.fast import tuning
    fast, tuned = (None, None) if tier is None else TIERS[tier]
    minswin.use_fast(fast)
    tuning.set_enabled(tuned)


def load_average():
    """The 1-minute load average (other programs sharing the cores), or None."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def torch_blas():
    """The BLAS PyTorch computes with on the CPU, from its build configuration."""
    import torch
    config = torch.__config__.show()
    found = [name for name in ("MKL", "OpenBLAS", "BLIS", "Accelerate") if
             f"BLAS_INFO={name.lower()}" in config.replace(" ", "").lower()
             or f"USE_{name.upper()}=ON" in config.replace(" ", "")]
    return found[0] if found else "unknown"


def tuning_state(tuning):
    """How the fast tier's layouts were chosen in this run: the cache and what it holds."""
    if not tuning.enabled():
        return "off (MINSWIN_TUNE=0): the table's defaults"
    chosen = tuning.choices()
    other = sum(1 for key, rec in chosen.items()
                if rec["choice"] != tuning.DEFAULTS[key.split("|")[0]])
    return (f"on: {len(chosen)} product classes timed, {other} not the default "
            f"({tuning.cache_path()})")


def machine_slug(meta):
    """'amd-epyc-family-26-model-2-haswell' from the processor and NumPy's BLAS kernel."""
    import re
    text = f"{meta.get('cpu', '')} {meta.get('numpy_blas', '').split('(')[-1].split()[0]}"
    text = re.sub(r"authenticamd|genuineintel|stepping \d+", "", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:80] or "unknown"


def cpu_model():
    """The CPU's name from /proc/cpuinfo (platform.processor() is empty on most Linuxes)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def markdown(meta, rows):
    tiers = meta.get("tiers", ["fast"])
    refs = "; ".join(f"{case}: {name}" for case, name in meta["reference"].items())
    lines = [f"Processor: {meta.get('cpu', meta['machine'])}; NumPy's BLAS: "
             f"{meta.get('numpy_blas')}; torch's BLAS: {meta.get('torch_blas')}; "
             f"fast tier's tuning: {meta.get('tuning')}; load average "
             f"{' -> '.join(str(v) for v in meta.get('load_average', []))} (start -> end).", "",
             f"Machine: {meta['machine']}; threads {meta['threads']}; backend {meta['backend']};"
             f" numpy {meta['numpy']}; torch {meta['torch']} ({refs}); "
             f"float32 GEMM {meta['gemm_float32_gflops']:.0f} GFLOP/s; "
             f"median of {meta['rounds']} alternating rounds; process tuning "
             f"{meta['process_tuning']}; {meta['date']}. Ratio: minswin time / torch time. "
             "digits: fwd+bwd is a whole training step (loss, backward, clipping, AdamW).", "",
             "| case | batch | torch fwd s | "
             + " | ".join(f"{t} fwd s | ratio" for t in tiers)
             + " | torch fwd+bwd s | " + " | ".join(f"{t} fwd+bwd s | ratio" for t in tiers)
             + " | minswin peak {0} MiB | torch peak {0} MiB |".format(
                 "GPU" if meta["backend"] == "cupy" else "RSS"),
             "|---" * (6 + 4 * len(tiers)) + "|"]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['batch']} | {fmt(r['torch_fwd_s'], '.3f')} | "
            + " | ".join(f"{fmt(r.get(f'{t}_fwd_s'), '.3f')} | "
                         f"{fmt(r.get(f'{t}_ratio_fwd'), '.2f')}x" for t in tiers)
            + f" | {fmt(r['torch_fwd_bwd_s'], '.3f')} | "
            + " | ".join(f"{fmt(r.get(f'{t}_fwd_bwd_s'), '.3f')} | "
                         f"{fmt(r.get(f'{t}_ratio_fwd_bwd'), '.2f')}x" for t in tiers)
            + f" | {fmt(r.get('minswin_peak_rss_mib'), '.0f')} | "
            f"{fmt(r.get('torch_peak_rss_mib'), '.0f')} |")
    frac = [r for r in rows if "gemm_fraction_fwd_bwd" in r]
    if frac:
        lines += ["", "minswin fwd+bwd as a fraction of the float32 GEMM rate (3x forward MACs): "
                  + ", ".join(f"batch {r['batch']}: {r['gemm_fraction_fwd_bwd']:.0%}"
                              for r in frac)]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--quick", action="store_true",
                   help="Swin-T batch 8, the block and the digits step only")
    p.add_argument("--case", type=parse_case, action="append",
                   help="swin_t:B, block:B or digits:B (repeatable); overrides --quick")
    p.add_argument("--tiers", type=lambda t: t.split(","), default=["fast", "plain"],
                   help="minswin tiers to time, comma-separated, of fast (tuned, as by "
                        "default), untuned (the fast tier with MINSWIN_TUNE=0) and plain "
                        "(default: fast,plain)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-RSS subprocesses")
    p.add_argument("--backend", default="numpy", choices=("numpy", "cupy"))
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    p.add_argument("--memory-child", nargs=3, metavar=("FRAMEWORK", "CASE", "BATCH"),
                   help=argparse.SUPPRESS)
    p.add_argument("--no-tune", action="store_true",
                   help="skip minswin.runtime.tune_cpu_process() (applied to both frameworks)")
    args = p.parse_args()
    if (not args.tiers or len(set(args.tiers)) != len(args.tiers)
            or any(t not in TIERS for t in args.tiers)):
        p.error(f"--tiers: expected a comma-separated list of {', '.join(TIERS)}, got "
                f"{','.join(args.tiers)!r}")
    set_threads(args.threads)
    sys.path.insert(0, ROOT)
    if args.no_tune:
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "0")   # OpenBLAS's default spin
    else:
        from minswin.runtime import tune_cpu_process  # imports NumPy after its env
        args.tune = tune_cpu_process()
    if args.memory_child:
        fw, case, batch = args.memory_child
        return memory_child(fw, case, int(batch), args.backend)
    meta, rows = run(args)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    md = markdown(meta, rows)
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(md + "\n")
    # and one file per processor and BLAS kernel, so that machines' figures sit side by side
    with open(os.path.join(args.out, f"cpu-{machine_slug(meta)}.md"), "w") as f:
        f.write(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
