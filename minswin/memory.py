"""How much memory a model and a batch need, estimated before anything is allocated.

One estimator serves every refusal: a config whose parameters alone would not fit (a
config.json with depths [1000]*4, num_classes 10^9), and a batch whose activations would not
(`minswin train --batch-size`, `minswin evaluate`'s batch). The numbers come from the config
alone, with the array shapes each layer really makes:

    parameters      counted per layer (the same arrays SwinTransformer registers)
    weights bytes   parameters x itemsize x 2: each parameter has its gradient beside it
                    (Module.param), and AdamW keeps two moments more while training
    activations     per image and per block, in units of the stage's (tokens x width) map and
                    its (windows x heads x N x N) attention, with coefficients measured with
                    tracemalloc on Swin-T and the digits model (see ACTIVATION_UNITS)

The estimates are meant to be right within tens of percent, enough to refuse a run that
cannot fit or to pick an evaluation batch that does, not to predict a run's peak exactly.

Memory available: MemAvailable of /proc/meminfo (or the physical memory where there is no
/proc), lowered by an address-space limit (`ulimit -v`) if one is set, or MINSWIN_MEMORY (bytes,
or a number with K/M/G) to pretend the machine is smaller.
"""
import math
import os
from typing import NamedTuple

GIB = 1024 ** 3

# activations per block, in floats: a * tokens * width + b * windows * heads * N * N. Caches:
# everything a backward reads stays for the whole forward (sum over blocks). No caches
# (minswin.no_grad): only the block being computed lives, plus its input (max over blocks).
# Training: the caches, plus the backward's own temporaries (max over blocks). Measured with
# tracemalloc (NumPy reports to it) on Swin-T at 224 and swin_digits: scripts are in
# tests/test_memory.py, which checks the estimate against the measured peak.
ACTIVATION_UNITS = {
    "caches": (19.0, 2.6),
    "no_grad": (16.0, 3.5),          # the largest single block: MLP hidden x 3, attention x 3
    "backward": (10.0, 2.0),         # the temporaries of one block's backward
}


def _parse_bytes(text):
    text = str(text).strip().upper().rstrip("B")
    scale = {"K": 1024, "M": 1024 ** 2, "G": GIB, "T": 1024 * GIB}.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in "KMGT" else text
    value = float(number) * scale
    if not math.isfinite(value) or value <= 0:
        raise ValueError
    return int(value)


def available_bytes():
    """Bytes this process may still allocate: MemAvailable (or physical memory), capped by an
    address-space limit; MINSWIN_MEMORY overrides both."""
    env = os.environ.get("MINSWIN_MEMORY", "").strip()
    if env:
        try:
            return _parse_bytes(env)
        except (ValueError, IndexError):
            raise ValueError(f"MINSWIN_MEMORY: expected a number of bytes such as 4G or "
                             f"512M, got {env!r}") from None
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 8 * GIB                                 # unknown: assume a small laptop
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft not in (resource.RLIM_INFINITY, -1):
            used = _vm_size()
            avail = min(avail, max(soft - used, 0))
    except (ImportError, OSError, ValueError):
        pass
    return avail


def _vm_size():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def gib(n):
    """Bytes for a message: 70.3 GiB, 412 MiB, 37 KiB."""
    if n >= GIB / 10:
        return f"{n / GIB:.1f} GiB"
    if n >= 1024 ** 2:
        return f"{n / 1024 ** 2:.0f} MiB"
    return f"{max(n, 1) / 1024:.0f} KiB"


class Stage(NamedTuple):
    tokens: int          # H * W of the stage's map (per image)
    padded: int          # Hp * Wp after padding to whole windows
    dim: int
    heads: int
    depth: int
    window: int          # N = M * M tokens per window


def stages(config):
    """The shape of each stage's map, as SwinTransformer builds it (sizes round up)."""
    c = config
    out = []
    for i, (h, w) in enumerate(c.stage_resolutions()):
        M = min(c.window_size, h, w)                      # a map smaller than M: one window
        padded = (-(-h // M) * M) * (-(-w // M) * M)
        out.append(Stage(h * w, padded, c.stage_dims[i], c.num_heads[i], c.depths[i], M * M))
    return out


def parameter_counts(config):
    """{'patch_embed', 'blocks', 'tables', 'merging', 'norm', 'head'} -> parameters, from the
    config alone (Swin V2's continuous position bias network counted under 'tables')."""
    c = config
    v2 = hasattr(c, "pretrained_window_sizes")
    r = c.mlp_ratio
    counts = dict(patch_embed=c.embed_dim * (c.in_chans * c.patch_size ** 2 + 3),
                  blocks=0, tables=0, merging=0)
    for i, (depth, d) in enumerate(zip(c.depths, c.stage_dims)):
        h = c.num_heads[i]
        hidden = int(d * r)
        per_block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d * hidden + hidden + d
        table = 512 * 2 + 512 + 512 * h + h if v2 else (2 * c.window_size - 1) ** 2 * h
        counts["blocks"] += depth * per_block
        counts["tables"] += depth * table
        if i < len(c.depths) - 1:
            counts["merging"] += 4 * d * 2 * d + 2 * (2 * d if v2 else 4 * d)
    counts["norm"] = 2 * c.num_features
    counts["head"] = (c.num_features + 1) * c.num_classes
    return counts


def activation_floats(config, mode):
    """Floats of activation memory per image: mode 'caches' (a forward that keeps what its
    backward needs), 'no_grad' (minswin.no_grad()) or 'train' (forward with caches, then the
    backward)."""
    per_block = []
    for s in stages(config):
        windows = s.padded // s.window
        units = {k: a * s.padded * s.dim + b * windows * s.heads * s.window ** 2
                 for k, (a, b) in ACTIVATION_UNITS.items()}
        per_block += [units] * s.depth
    if not per_block:
        return 0
    if mode == "no_grad":                 # + the image and its patches, alive meanwhile
        c = config
        H, W = c.img_hw
        return max(u["no_grad"] for u in per_block) + 2 * H * W * c.in_chans
    caches = sum(u["caches"] for u in per_block)
    if mode == "caches":
        return caches
    if mode == "train":
        return caches + max(u["backward"] for u in per_block)
    raise ValueError(f"mode: expected 'caches', 'no_grad' or 'train', got {mode!r}")


class Estimate(NamedTuple):
    params: int
    weights_bytes: int       # parameters + gradients (+ optimiser moments when training)
    per_image_bytes: int     # activations of one image
    available: int


def estimate(config, dtype="float32", mode="no_grad", optimizer_slots=0):
    import numpy as np
    itemsize = np.dtype(dtype).itemsize
    params = sum(parameter_counts(config).values())
    weights = params * itemsize * (2 + optimizer_slots)
    per_image = activation_floats(config, mode) * itemsize
    return Estimate(params, weights, per_image, available_bytes())


# the share of the available memory a run may plan to use: the rest is for NumPy's own
# temporaries, the data set, the interpreter and whatever else the machine runs
USABLE = 0.8


def _dominant_field(config):
    """The config field that makes the parameters large, for the message."""
    counts = parameter_counts(config)
    part = max(counts, key=counts.get)
    return {"head": "num_classes", "tables": "window_size", "patch_embed": "patch_size",
            "merging": "embed_dim"}.get(part, "depths/embed_dim")


def check_model_fits(config, dtype="float32", what="config"):
    """Refuse (MemoryError-free ValueError, one line) a model whose weights and gradients
    alone would not fit in the memory available; called before anything is allocated."""
    est = estimate(config, dtype)
    if est.weights_bytes > USABLE * est.available:
        field = _dominant_field(config)
        value = (f"{list(config.depths)} at embed_dim {config.embed_dim}" if "/" in field
                 else getattr(config, field))
        field = field.split("/")[0]
        raise ValueError(
            f"{what}: {field} {value} makes a model of about {est.params:,} parameters, "
            f"{gib(est.weights_bytes)} with their gradients ({np_name(dtype)}); this machine "
            f"has {gib(est.available)} available: expected a model that fits")
    return est


def np_name(dtype):
    import numpy as np
    return np.dtype(dtype).name


def largest_batch(config, dtype="float32", mode="no_grad", optimizer_slots=0):
    """(the largest batch whose estimate fits, the Estimate); 0 when not even one image fits."""
    est = estimate(config, dtype, mode, optimizer_slots)
    room = USABLE * est.available - est.weights_bytes
    if room <= 0 or est.per_image_bytes == 0:
        return (0 if room <= 0 else 1 << 30), est
    return int(room // est.per_image_bytes), est


def check_batch_fits(config, batch, dtype="float32", mode="train", optimizer_slots=2,
                     flag="--batch-size", size_flag="--img-size"):
    """Refuse a batch that would not fit: one line naming `flag` (or `size_flag` when not
    even one image fits), the estimate and the memory available."""
    fits, est = largest_batch(config, dtype, mode, optimizer_slots)
    need = est.weights_bytes + batch * est.per_image_bytes
    what = {"train": "a training step", "no_grad": "a forward pass",
            "caches": "a forward pass"}[mode]
    if fits >= batch:
        return est
    if fits == 0:
        raise ValueError(
            f"{size_flag} {config.img_name}: {what} needs about {gib(est.per_image_bytes)} "
            f"of activations per image besides {gib(est.weights_bytes)} of weights; this "
            f"machine has {gib(est.available)} available: expected a smaller image or model")
    raise ValueError(
        f"{flag} {batch}: {what} would need about {gib(need)} ({gib(est.per_image_bytes)} "
        f"per image, {gib(est.weights_bytes)} of weights); this machine has "
        f"{gib(est.available)} available: expected {flag} {fits} or less")


# a forward inside minswin.no_grad() runs a large batch in pieces whose activations stay under
# this: a bounded peak (Swin-T: pieces of 9 images; benchmarks/bench_inference.py), the same
# maths (each image is computed on its own; the BLAS may add in another order for another
# batch size, so the logits agree to float round-off, not bit for bit)
PIECE_BYTES = 256 * 1024 ** 2


def no_grad_pieces(config, batch, dtype):
    """[(start, stop), ...] pieces of the batch for a forward inside no_grad(), or None to
    run it whole: with caches (they must hold the whole batch for its backward), with
    keep_attention (the pictures read the whole batch's weights), or when it is small."""
    from .grad_mode import is_grad_enabled, keeps_attention
    if is_grad_enabled() or keeps_attention() or batch <= 1:
        return None
    import numpy as np
    per_image = activation_floats(config, "no_grad") * np.dtype(dtype).itemsize
    piece = max(1, int(PIECE_BYTES // max(per_image, 1)))
    if batch <= piece:
        return None
    return [(i, min(i + piece, batch)) for i in range(0, batch, piece)]
