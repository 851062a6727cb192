"""The tour: Swin-T end to end on a real photo, every number computed, every picture drawn.

`minswin tour` (and `make tour`) call `run_tour`. It builds Swin-T, pushes one 224x224 photo
through the whole network while recording each module's output shape, prints the shape table
(also in the H x W x C notation of the explainer, the Chinese article on Swin this project grew
from) as it really happened, the windows and masks of every stage, the parameter count, the
FLOPs per stage, and the explainer's MSA vs W-MSA example, then writes every figure of
`minswin.viz` into a folder. Nothing printed is typed in by hand: each value is read from the
model, its trace, `minswin.flops` or the mask functions.
"""
import os
import sys
import time
from typing import NamedTuple

from . import flops as flops_mod, viz
from .backend import default_xp, to_backend
from .grad_mode import no_grad
from .model import create_model
from .ops.masks import attention_mask
from .ops.patch_embed import patchify
from .ops.window import pad_forward

DEFAULT_OUT = "minswin-figures"


class TourResult(NamedTuple):
    out: str                # folder the figures went to
    files: list             # file names written, in order
    trace: list             # (module name, output shape) of the forward pass
    num_params: int
    flops: int              # total MACs, official counting
    flops_by_stage: dict    # stage label -> MACs
    windows: list           # windows per stage
    msa_saving: int         # MSA - W-MSA with pixels as tokens: h=w=224, C=3, M=7
    seconds: float


def _fmt_shape(shape):
    return "x".join(str(s) for s in shape[1:])            # drop the batch axis


def _shape_rows(model, x, trace, stages):
    """(step, full shape) rows of the forward pass; printed with an H x W x C column."""
    c = model.config
    xpad, _ = pad_forward(x, c.patch_size)
    patches = patchify(xpad, c.patch_size)                 # (1, h, w, 3*p*p): before the Linear
    shapes = dict(trace)
    rows = [("input image", x.shape),
            (f"patch partition ({c.patch_size}x{c.patch_size}x{c.in_chans} patches)",
             patches.shape),
            ("linear embedding + LayerNorm", shapes["patch_embed"])]
    for s in stages:
        rows.append((f"{s['name']}: {s['blocks']} Swin blocks", s["shape"]))
        if s["merged"] is not None:
            rows.append(("  patch merging", s["merged"]))
    rows += [("final LayerNorm", shapes["norm"]), ("global average pool", shapes["avgpool"]),
             ("head (class logits)", shapes["head"])]
    return rows


def _what_block_does(window, padded, shift):
    """A block's attention in words: W-MSA, or SW-MSA with its shift and mask."""
    if shift == (0, 0):
        return "W-MSA, no shift, no mask"
    mask = attention_mask(*padded, window, shift)          # (nW, N, N)
    masked = int((mask != 0).any(axis=(1, 2)).sum())
    return (f"SW-MSA, shift {shift[0]}, mask {mask.shape}, {masked} of {len(mask)} windows "
            "have masked pairs")


def _flops_by_stage(model):
    parts = model.flops_breakdown()
    out = {"patch embed": parts.get("patch_embed", 0)}
    for i in range(len(model.layers)):
        out[f"stage {i + 1} blocks"] = parts.get(f"layers.{i}.blocks", 0)
        if f"layers.{i}.downsample" in parts:
            out[f"stage {i + 1} merging"] = parts[f"layers.{i}.downsample"]
    out["norm + head"] = parts.get("norm", 0) + parts.get("head", 0)
    return out


def _print_tables(p, model, name, x, trace, logits, stages):
    c = model.config
    p(f"\n== 1. {name}: one real {c.img_size}x{c.img_size} photo through the whole network ==")
    p(f"{'step':<44}{'array shape':<22}H x W x C")
    for step, shape in _shape_rows(model, x, trace, stages):
        p(f"{step:<44}{str(tuple(shape)):<22}{_fmt_shape(shape)}")
    p(f"logits: {tuple(logits.shape)} (random weights, seed 0: the classes mean nothing yet)")

    p("\n== 2. windows and masks per stage ==")
    for layer, s in zip(model.layers, stages):
        _, H, W, C = s["shape"]
        M = s["window"]
        p(f"{s['name']}: {H}x{W}x{C}, {s['heads']} heads, window {M}x{M}"
          f" -> {s['windows']} window{'s' if s['windows'] > 1 else ''}")
        for j, (blk, shift) in enumerate(zip(layer.blocks, s["shifts"])):
            what = _what_block_does(M, s["padded"], shift)
            p(f"    {f'blocks.{j}':<10}{what}; attention weights "
              f"{blk.attention_weights().shape}")

    n = model.num_params()
    p(f"\n== 3. parameters: {n:,} ==")
    p("the four variants (minswin.configs):")
    from .configs import get_config
    p(f"  {'name':<8}{'C':>5}  {'depths':<15}{'heads':<16}{'M':>3}")
    for v in ("swin_t", "swin_s", "swin_b", "swin_l"):
        k = get_config(v)
        p(f"  {v:<8}{k.embed_dim:>5}  {str(k.depths):<15}{str(k.num_heads):<16}"
          f"{k.window_size:>3}")

    total = model.flops()
    by_stage = _flops_by_stage(model)
    p(f"\n== 4. FLOPs (multiply-accumulates, official counting): {total / 1e9:.3f} G ==")
    for k, v in by_stage.items():
        p(f"  {k:<20}{v / 1e9:>8.4f} G")

    h, w, C, M = 224, 224, 3, 7          # every pixel a token: the explainer's example
    msa, wmsa = flops_mod.msa_flops(h, w, C), flops_mod.wmsa_flops(h, w, C, M)
    saving = flops_mod.msa_saving(h, w, C, M)
    p(f"\n== 5. global MSA vs window W-MSA with pixels as tokens (not a Swin setting): "
      f"h=w={h}, C={C}, M={M} ==")
    p("  the worked example of the explainer, the Chinese article on Swin this project grew "
      "from;\n  Swin-T's own cost per stage is section 4 above")
    p(f"  MSA   4hwC^2 + 2(hw)^2 C  = {msa:>18,}")
    p(f"  W-MSA 4hwC^2 + 2M^2 hwC   = {wmsa:>18,}")
    p(f"  saving 2(hw)^2 C - 2M^2 hwC = {saving:>16,}")
    return n, total, by_stage, saving


def _trained_digits():
    """The shipped trained swin_digits after a forward pass of its first test digit:
    (model, display image (16, 16, 3) in [0, 1], caption). Its attention and bias are learned,
    unlike Swin-T's random ones, so the tour draws those pictures from it."""
    import numpy as np

    from .training import load_data, make_config, model_from_checkpoint
    from .weights import pretrained_path
    model, meta = model_from_checkpoint(pretrained_path("swin_digits"))
    model.eval()
    mean, std = np.asarray(meta["mean"], np.float32), np.asarray(meta["std"], np.float32)
    ds = load_data(make_config(meta["config"]), model.config.img_size, mean, std)
    x = ds.test.x[:1].astype(model.dtype)                  # (1, 16, 16, 3)
    with no_grad(keep_attention=True):                     # the attention weights, no caches
        model.forward(x)
    img = x[0] * std + mean
    img = (img - img.min()) / max(float(img.max() - img.min()), 1e-12)
    return model, img, f"swin_digits, trained (shipped), test digit {int(ds.test.y[0])}"


def _figure_jobs(model, name, img, trace, stages):
    """(file name, callable returning a Figure or writing the file itself)."""
    c = model.config
    first, final = stages[0], stages[-1]
    M = first["window"]
    _, H1, W1, _ = first["shape"]                          # the map stage 1 really gets
    b1 = model.layers[0].blocks[1]                         # stage 1, shifted block
    S, s1 = b1.shift_size, first["shifts"][1]              # nominal, and as used on (H1, W1)
    a1 = b1.attention_weights()                       # (1, nW, nH, N, N)
    centre_window = viz.central_window(*first["padded"], M)
    last = model.layers[-1].blocks[-1]
    _, Hl, Wl, _ = final["shape"]
    al = last.attention_weights()
    table_key = "layers.0.blocks.1.attn.relative_position_bias_table"
    digits, digit, caption = _trained_digits()             # learned pictures
    d1 = digits.layers[0].blocks[1]
    ad = d1.attention_weights()                            # (1, nW, nH, N, N)
    Hd, Wd = digits.layers[0].input_resolution               # (8, 8) tokens
    _, sd = d1.window_shift_for(Hd, Wd)
    jobs = [
        ("01_windows_grid.png", lambda: viz.plot_window_partition(8, 4, 2)),
        ("01_windows_image.png", lambda: viz.plot_window_partition(window=M, shift=S,
                                                                   image=img,
                                                                   patch=c.patch_size)),
        ("02_cyclic_shift.png", lambda: viz.plot_cyclic_shift(8, 4, 2)),
        ("02_cyclic_shift_image.png", lambda: viz.plot_cyclic_shift(8, 4, 2, image=img)),
        ("02_cyclic_shift.gif", "gif"),
        ("03_region_numbering.png", lambda: viz.plot_region_numbering(8, 4, 2)),
        ("03_mask_window_8x8.png", lambda: viz.plot_window_mask(8, 4, 2, window_id=1)),
        ("03_mask_window_stage1.png",
         lambda: viz.plot_window_mask(H1, M, S, window_id=(H1 // M) ** 2 - 1)),
        ("03_masks_stage1.png", lambda: viz.plot_stage_masks(H1, M, S)),
        ("03_masks_stage2.png", lambda: viz.plot_stage_masks(stages[1]["shape"][1], M, S)),
        ("04_index_walkthrough.png", lambda: viz.plot_index_walkthrough(2)),
        ("04_relative_position_index.png", lambda: viz.plot_relative_position_index(M)),
        ("05_bias_trained.png", lambda: viz.plot_relative_position_bias(
            digits.params[table_key], name=f"{table_key} ({caption.split(',')[0]}, trained)")),
        ("05_bias_random.png", lambda: viz.plot_relative_position_bias(
            model.params[table_key], name=f"{table_key} ({name}, random weights: untrained, "
                                          "no pattern to read)")),
        ("06_attention_weights_trained.png", lambda: viz.plot_window_attention(
            ad, window_id=0, name=f"layers.0.blocks.1 ({caption})")),
        ("06_query_attention_trained.png", lambda: viz.plot_query_attention(
            digit, ad, (Hd, Wd), d1.window_size, sd, window_id=0,
            name=f"layers.0.blocks.1, {caption}")),
        ("06_query_attention_stage1_random.png", lambda: viz.plot_query_attention(
            img, a1, (H1, W1), M, s1, window_id=centre_window,
            name=f"layers.0.blocks.1, {name} with random weights: noise around 1/N")),
        ("06_query_attention_stage4_random.png", lambda: viz.plot_query_attention(
            img, al, (Hl, Wl), final["window"], final["shifts"][-1],
            window_id=0, name=f"layers.{len(stages) - 1}.blocks.{final['blocks'] - 1}, "
                              f"{name} with random weights: noise around 1/N")),
        ("07_patch_merging.png", lambda: viz.plot_patch_merging(4)),
        ("08_hierarchy.png", lambda: viz.plot_hierarchy(model, trace, img, name)),
        ("09_attention_cost.png", lambda: viz.plot_attention_cost(model, name=name)),
        # Swin V2 (tutorial 11): what its position network sees, and v1's table moved to M=12
        ("10_v2_log_coordinates.png", lambda: viz.plot_log_spaced_coordinates(8, new_window=16)),
        ("10_v1_table_resize.png", lambda: viz.plot_table_resize(
            model.params[table_key], 12, name=f"{table_key} ({name})")),
    ]
    return jobs


_JOBS = []          # (path, job, dpi, img) for the figure workers, set just before forking


def _render(i):
    """Draw and write figure i of `_JOBS` (runs in a worker process or in this one)."""
    path, job, dpi, img = _JOBS[i]
    if job == "gif":
        viz.save_shift_gif(path, 8, 4, 2, image=img)
    else:
        viz.save_figure(job(), path, dpi=dpi)
    return i


def _render_all(jobs, workers, progress):
    """Render every job, in `workers` forked processes when the platform allows it.

    Figures are independent, pure-Python matplotlib work, so two processes on two cores
    halve the time. Forking shares the model and its attention weights without copying or
    pickling them; where fork is unavailable (Windows, macOS default) they run one by one.
    """
    from tqdm import tqdm
    global _JOBS
    _JOBS = jobs
    bar = tqdm(total=len(jobs), desc="figures", disable=not progress, leave=False)
    try:
        import multiprocessing as mp
        if workers > 1 and "fork" in mp.get_all_start_methods() and sys.platform != "darwin":
            with mp.get_context("fork").Pool(workers) as pool:
                for _ in pool.imap_unordered(_render, range(len(jobs))):
                    bar.update()
        else:
            for i in range(len(jobs)):
                _render(i)
                bar.update()
    finally:
        bar.close()
        _JOBS = []


def run_tour(out=DEFAULT_OUT, model_name="swin_t", progress=True, file=None, dpi=100,
             workers=None):
    """Run the tour; print to `file` (default stdout); write figures into `out`.

    Returns a TourResult. progress: show tqdm bars (on stderr) for the slow steps; workers:
    processes drawing the figures (default: up to 2, one per core). `out` is made here and
    held for the tour (a second tour into it is refused); if the tour stops before writing
    anything, the folder it made goes again.
    """
    from .atomic import owned_folder
    out = os.path.abspath(os.fspath(out))
    with owned_folder(out, "out"):
        return _run_tour(out, model_name, progress, file, dpi, workers)


def _run_tour(out, model_name, progress, file, dpi, workers):
    from tqdm import tqdm
    file = file or sys.stdout
    t0 = time.perf_counter()
    if not os.access(out, os.W_OK):
        raise OSError(f"cannot write into {out}: permission denied")

    def p(msg=""):
        tqdm.write(msg, file=file)

    names = {"swin_t": "Swin-T", "swin_s": "Swin-S", "swin_b": "Swin-B", "swin_l": "Swin-L"}
    name = names.get(model_name, model_name)
    with tqdm(total=2, desc="tour", disable=not progress, leave=False) as bar:
        bar.set_description(f"building {name}")
        model = create_model(model_name)
        bar.update()
        c = model.config
        img = viz.sample_image(c.img_size)                 # (S, S, 3) in [0, 1], a photo
        x = to_backend(viz.normalise(img)[None], default_xp())   # (1, S, S, 3)
        bar.set_description(f"forward pass of {name}")
        with no_grad(keep_attention=True):                 # no backward comes: no caches,
            logits, trace = model.trace(x)                 # only the attention weights
        bar.update()
    stages = viz.stage_summary(model, trace)
    n, total, by_stage, saving = _print_tables(p, model, name, x, trace, logits, stages)

    p(f"\n== 6. pictures -> {out} ==")
    p("attention and bias (05_*, 06_*): the trained swin_digits that ships with minswin "
      "(minswin.pretrained); Swin-T's random weights beside them, marked 'random'")
    jobs = _figure_jobs(model, name, img, trace, stages)
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    _render_all([(os.path.join(out, f), job, dpi, img) for f, job in jobs], workers, progress)
    written = [f for f, _ in jobs]
    missing = [f for f in written if not os.path.isfile(os.path.join(out, f))]
    if missing:
        raise RuntimeError(f"tour: these figures were not written: {', '.join(missing)}")
    seconds = time.perf_counter() - t0
    p(f"wrote {len(written)} files to {out}: {', '.join(written)}")
    p(f"tour done in {seconds:.1f} s")
    return TourResult(out, written, trace, n, total, by_stage, [s["windows"] for s in stages],
                      saving, seconds)
