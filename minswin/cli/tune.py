"""`minswin tune`: time the fast tier's GEMM layouts and block sizes on this machine, now.

    minswin tune                          # swin_digits at batch 64 and Swin-T at batch 8
    minswin tune --model swin_t:32        # another model or batch (repeatable)
    minswin tune --show                   # what is chosen already, and where it is kept
    minswin tune --retune                 # forget the choices, then time again
    minswin tune --forget                 # delete this machine's choices (the cache file)

The fast tier times each new product class the first time it meets it anyway
(minswin/fast/tuning.py); this runs one training step of each model so that it happens at
once, and prints every choice with the times behind it.
"""
import os
import re

DEFAULT_MODELS = ("swin_digits:64", "swin_t:8")


def add_parser(sub):
    p = sub.add_parser(
        "tune", help="time the fast tier's matrix-product layouts on this machine",
        description="Run one training step of each model with the fast tier's tuning on, so "
                    "that every product class it meets is timed now (its layouts and block "
                    "sizes), and print the choices. They are kept in a small file per "
                    "machine (printed below) that may be deleted at any time. "
                    "MINSWIN_TUNE=0 turns tuning off.")
    p.add_argument("--model", action="append", metavar="NAME[:BATCH]",
                   help="a model config (swin_t, swin_digits, ...) and batch size "
                        f"(default: {' and '.join(DEFAULT_MODELS)}); repeatable")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                   help="floating-point type the products are timed in (default: float32)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--show", action="store_true", help="print the choices made so far")
    what.add_argument("--retune", action="store_true",
                      help="forget the choices made so far, then time again")
    what.add_argument("--forget", action="store_true",
                      help="delete this machine's choices and stop")
    p.set_defaults(func=run)


def parse_model(text):
    """'swin_t:8' -> ('swin_t', 8); 'swin_t' -> ('swin_t', 8)."""
    from ..configs import CONFIGS
    m = re.fullmatch(r"([A-Za-z0-9_]+)(?::(\d+))?", text)
    if not m or m.group(1) not in CONFIGS or (m.group(2) is not None and int(m.group(2)) < 1):
        raise ValueError(f"--model: expected NAME[:BATCH] with NAME one of "
                         f"{', '.join(sorted(CONFIGS))} and BATCH >= 1, got {text!r}")
    return m.group(1), int(m.group(2) or 8)


def run(args):
    import numpy as np

    from .. import tiers
    from ..configs import get_config
    from ..fast import tuning
    from ..memory import gib, largest_batch
    from ..model import create_model
    if args.forget:
        print(f"deleted {tuning.forget()}" if os.path.exists(tuning.cache_path())
              else f"nothing to delete: {tuning.cache_path()} does not exist")
        return 0
    if args.show:
        print("\n".join(tuning.summary()))
        return 0
    if not tuning.enabled():
        raise ValueError(f"{tuning.ENV}=0 turns tuning off: unset it (or set it to 1) to tune")
    models = [parse_model(t) for t in (args.model or DEFAULT_MODELS)]
    for name, batch in models:                           # minswin/memory.py's estimate
        fits, est = largest_batch(get_config(name), args.dtype, mode="train")
        if fits < batch:
            need = est.weights_bytes + batch * est.per_image_bytes
            raise ValueError(f"--model: {name}:{batch} needs about {gib(need)} for a training "
                             f"step and this machine has {gib(est.available)} available: "
                             f"expected a batch of {fits} or less")
    if args.retune:
        print(f"forgot the choices in {tuning.forget()}")
    if tuning.busy():
        print(f"note: the load average ({os.getloadavg()[0]:.1f}) is over twice the "
              f"{tuning.usable_cores()} usable cores: other programs hold them, and the "
              "timings may be wrong; run `minswin tune --retune` when the machine is quieter")
    tuning.on_measured = lambda key, rec: print(
        f"  {key:<40} -> {rec['choice']}", flush=True)
    tuning.measure_when_busy = True
    before = tiers.use_fast(True)
    try:
        for name, batch in models:
            print(f"{name}, batch {batch}, {args.dtype}: one training step", flush=True)
            model = create_model(name, num_classes=10, dtype=args.dtype).train()
            c = model.config
            x = np.random.default_rng(0).standard_normal(
                (batch, *c.img_hw, c.in_chans)).astype(args.dtype)
            tuning.block_elements()
            out = model.forward(x)
            model.backward(np.ones_like(out))
            del model, out, x
    finally:
        tiers.use_fast(before)
        tuning.on_measured, tuning.measure_when_busy = None, False
    print("\n".join(tuning.summary()))
    return 0
