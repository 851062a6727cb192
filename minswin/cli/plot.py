"""`minswin plot FIGURE`: one picture of Swin's machinery, written to a PNG, SVG or PDF.

Every option has a default, so `minswin plot mask -o mask.png` works as is. Bad input (a
window that does not divide the map, a shift >= window, an unknown figure, a path that
cannot be written) is one line on stderr and exit status 2, never a traceback.
"""
import argparse
import os

from .errors import CliError

FIGURES = {
    "windows": "regular windows (block l) beside shifted windows (block l+1)",
    "shift": "the cyclic shift step by step: nine regions rolled up and left",
    "shift-gif": "the cyclic shift as an animated GIF (-o must end in .gif)",
    "regions": "the nine regions' numbers (region_labels) before and after the roll",
    "mask": "one window's region labels and its (N, N) shift attention mask",
    "stage-masks": "the masks of all windows of a map, laid out like the windows",
    "index": "the (N, N) relative position index as a heat map",
    "index-walk": "the relative position index built step by step (M = 2 or 3)",
    "bias": "a block's relative position bias table per head and its (N, N) bias",
    "attention": "one query token's attention over its window, drawn on the input image",
    "attention-weights": "the (N, N) attention weights of one window, per head",
    "merge": "patch merging: the x0, x1, x2, x3 sub-grids concatenated on channels",
    "hierarchy": "the stages of a model with their real shapes (runs a forward pass)",
    "cost": "global MSA vs window W-MSA multiply-accumulates per stage",
    "log-coords": "Swin V2's log-spaced offsets against linear ones (--window, --new-window)",
    "cpb": "a Swin V2 block's continuous position bias per head as (2M-1)x(2M-1) images",
    "table-resize": "a v1 block's bias table before and after the bicubic resize to "
                    "--new-window",
}
MODEL_FIGURES = ("bias", "attention", "attention-weights", "hierarchy", "cost", "cpb",
                 "table-resize")
V2_FIGURES = ("cpb",)                      # their --model defaults to swinv2_t
# figures of learned weights: by default drawn from the trained model that ships with minswin
SHIPPED_FOR = {"bias": "swin_digits", "attention": "swin_digits",
               "attention-weights": "swin_digits", "cpb": "swinv2_digits"}
LEARNED_FIGURES = tuple(SHIPPED_FOR)

EXAMPLES = """\
examples:
  minswin plot mask -o mask.png                      an 8x8 map, M=4, S=2, window 1
  minswin plot regions --shift 1 -o regions.png
  minswin plot mask --size 56 --window 7 --window-id 63 -o mask63.svg
  minswin plot stage-masks --size 56 --window 7 -o masks.png
  minswin plot shift -o shift.pdf
  minswin plot shift-gif -o shift.gif
  minswin plot windows --size 56 --window 7 --image -o windows.png
  minswin plot index --window 7 -o index.png
  minswin plot index-walk --window 2 -o walk.png
  minswin plot bias --stage 1 --block 1 --head 0 -o bias.png     the shipped trained model
  minswin plot attention --image-index 5 -o attention.png         one of its test digits
  minswin plot bias --random-weights -o bias_random.png           the same model untrained
  minswin plot attention --model swin_t --stage 4 -o attention.png  (random weights)
  minswin plot attention --checkpoint runs/digits/best.safetensors --image-index 3 -o a.png
  minswin plot merge -o merge.png
  minswin plot hierarchy --model swin_t -o hierarchy.png
  minswin plot log-coords --window 8 --new-window 16 -o coords.png
  minswin plot cpb -o cpb.png                        the shipped trained swinv2_digits
  minswin plot cpb --random-weights -o cpb_random.png   the same model untrained
  minswin plot cpb --checkpoint runs/swinv2_digits/best.safetensors -o cpb.png
  minswin plot table-resize --window 12 -o resize.png    (swin_t's window 7 -> 12)
"""


def add_parser(sub):
    desc = "Draw one figure of Swin's machinery from arrays minswin computes.\n\nfigures:\n" + \
        "\n".join(f"  {k:<18}{v}" for k, v in FIGURES.items())
    p = sub.add_parser("plot", help="draw one figure (mask, shift, index, bias, ...)",
                       description=desc, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("figure", metavar="FIGURE", choices=sorted(FIGURES),
                   help="which figure: " + ", ".join(FIGURES))
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="where to write it; .png, .svg or .pdf (default minswin-FIGURE.png)")
    p.add_argument("--size", type=int, default=None,
                   help="map side in tokens (windows/shift/mask: 8, stage-masks: 56); for "
                        "model figures the input image side in pixels (default: the model's)")
    p.add_argument("--window", type=int, default=None,
                   help="window side M (default 4 on the small maps, 7 for index and "
                        "stage-masks, 2 for index-walk)")
    p.add_argument("--shift", type=int, default=None, help="shift S (default M // 2)")
    p.add_argument("--window-id", type=int, default=None,
                   help="which window (default: mask 1, a window of two regions; attention a "
                        "central one)")
    p.add_argument("--head", type=int, default=None,
                   help="one attention head (default: the first few)")
    p.add_argument("--stage", type=int, default=1, help="stage 1..4 for bias/attention "
                   "(default 1)")
    p.add_argument("--block", type=int, default=None,
                   help="block in the stage (default 1, the shifted one, when it exists)")
    p.add_argument("--query", type=int, default=None,
                   help="query token in the window for attention (default: the centre)")
    p.add_argument("--model", default=None,
                   help="model config for model figures, random weights unless --checkpoint "
                        "or a shipped model's name (swin_digits, swinv2_digits: its trained "
                        "weights for bias/attention/cpb) (default: bias/attention the trained "
                        "swin_digits that ships with minswin, cpb the trained swinv2_digits, "
                        "else swin_t; see minswin.configs)")
    p.add_argument("--new-window", type=int, default=None,
                   help="log-coords: a larger window to mark (default none); table-resize: "
                        "the window to resize to (default 12)")
    p.add_argument("--checkpoint", metavar="PATH", default=None,
                   help="load weights (.safetensors/.npz) for bias/attention/hierarchy (default: "
                        "none, see --model)")
    p.add_argument("--allow-nonfinite", action="store_true",
                   help="with --checkpoint: load weights that hold NaN or inf (to inspect a "
                        "broken run)")
    p.add_argument("--random-weights", action="store_true",
                   help="bias/attention/cpb: the shipped model's random initial weights "
                        "(seed 0) instead of trained ones, for comparison")
    p.add_argument("--image-index", type=int, default=None,
                   help="with a `minswin train` checkpoint or the shipped model: draw this "
                        "image of its test split (default 0 for the shipped model)")
    p.add_argument("--image", action="store_true",
                   help="windows/shift: draw a real photo under the tokens")
    p.add_argument("--dpi", type=int, default=130, help="resolution of PNG output, dots per inch")
    # the library's parameter names -> this command's options, for its error messages
    p.set_defaults(func=run, param_flags={"heads": "head", "head": "head", "name": "model",
                                          "path": "checkpoint"})
    return p


# ---------------------------------------------------------------------------- options
#
# The figure functions check what they are given (window, shift, window_id, heads, query) with
# messages that name the argument; the checks here are the ones viz cannot make: options that
# only the command has (--stage, --block, --image-index, --dpi) and its own refusals.

def _given(value, default):
    """An option's value, or the figure's default when the option was not given."""
    return default if value is None else value


def _output_path(args):
    """-o, or minswin-FIGURE.png (.gif for shift-gif).

    save_shift_gif checks its path before it draws anything. A still figure's path is checked
    here, with save_figure's own checks, so that a bad -o fails before the drawing (a forward
    pass for the model figures), not after it.
    """
    from ..viz._common import check_format, check_writable
    if args.output is not None and not args.output.strip():
        raise CliError(f"-o/--output: expected a file name, got {args.output!r}")
    if args.figure == "shift-gif":
        return args.output or "minswin-shift-gif.gif"
    path = args.output or f"minswin-{args.figure}.png"
    check_format(path)
    check_writable(path)
    return path


def _grid_options(args, size, window):
    """(size, window, shift) of a map figure, the figure's defaults where no option is given.

    Checked now, by viz's own square_grid, because the command computes with them (the photo's
    size, the number of windows) before the figure function sees them.
    """
    from ..viz.geometry import square_grid
    size, _, window, (shift, _) = square_grid(_given(args.size, size),
                                              _given(args.window, window), args.shift)
    return size, window, shift


# ---------------------------------------------------------------------------- models

def _load_model(args):
    """(model, name, display image (S, S, 3) in [0, 1], network input (1, S, S, 3), which
    image in words: "" for the sample photo)."""
    import numpy as np

    from .. import viz
    from ..model import create_model
    meta = None
    if args.checkpoint is not None and not args.checkpoint:
        raise CliError("--checkpoint: expected a file name, got ''")
    if args.checkpoint and args.random_weights:
        raise CliError("--random-weights: cannot be combined with --checkpoint")
    from ..weights import PRETRAINED
    shipped_name = SHIPPED_FOR.get(args.figure)           # None: no learned meaning drawn
    if shipped_name is not None and args.model in PRETRAINED:
        shipped_name = args.model                          # a shipped model by its name
    shipped = (shipped_name is not None and args.model in (None, shipped_name)
               and not args.checkpoint and not args.random_weights)
    if shipped:
        from ..weights import pretrained_path
        args.checkpoint = pretrained_path(shipped_name)
        if args.image_index is None:
            args.image_index = 0
    # no --model: the shipped model's config for --random-weights, else a full-size one
    model_name = args.model or (shipped_name if args.random_weights and shipped_name else
                                "swinv2_t" if args.figure in V2_FIGURES else "swin_t")
    if args.checkpoint:
        from ..checkpoint import load_checkpoint, to_official_keys
        from ..training import META_KEY, model_from_checkpoint
        state, metadata = load_checkpoint(args.checkpoint, with_metadata=True)
        if META_KEY in (metadata or {}):
            model, meta = model_from_checkpoint(args.checkpoint,
                                                allow_nonfinite=args.allow_nonfinite)
            name = (f"{shipped_name} (trained, shipped with minswin)" if shipped else
                    f"{meta['config'].get('model', 'model')} from "
                    f"{os.path.basename(args.checkpoint)}")
        else:
            state = to_official_keys(state)                # timm/tv names -> official
            head = state.get("head.weight")
            classes = head.shape[0] if head is not None else 1000
            model = create_model(model_name, num_classes=classes, img_size=args.size)
            # strict: a partial load is an error
            model.load_state_dict(state, allow_nonfinite=args.allow_nonfinite)
            name = f"{model_name} from {os.path.basename(args.checkpoint)}"
    else:
        model = create_model(model_name, img_size=args.size)
        name = f"{model_name} (random weights, seed 0: untrained)"
        if model_name == shipped_name and args.size is None:
            # the shipped model's digits and normalisation, to compare with the trained one
            from ..training import read_training_checkpoint
            from ..weights import pretrained_path
            meta = read_training_checkpoint(pretrained_path(shipped_name))[2]
            model = create_model(model_name, num_classes=len(meta["classes"]))
            if args.image_index is None:
                args.image_index = 0
    S = model.config.img_size
    if args.image_index is not None:
        if meta is None:
            raise CliError("--image-index: needs a checkpoint written by `minswin train` "
                           "(it names the data set and its normalisation), or the shipped "
                           "model (leave out --model)")
        from ..training import load_data, make_config
        cfg = make_config(meta["config"])
        ds = load_data(cfg, S, mean=meta["mean"], std=meta["std"])
        n = len(ds.test.x)
        if not 0 <= args.image_index < n:
            raise CliError(f"--image-index: expected 0 <= index < {n} (the test split), got "
                           f"{args.image_index}")
        x = ds.test.x[args.image_index][None].astype(model.dtype)       # (1, S, S, 3)
        img = x[0] * np.asarray(meta["std"]) + np.asarray(meta["mean"])  # undo normalisation
        img = (img - img.min()) / max(float(img.max() - img.min()), 1e-12)
        image_note = f", test image {args.image_index} (label {int(ds.test.y[args.image_index])})"
    else:
        img = viz.sample_image(S)
        x = viz.normalise(img)[None].astype(model.dtype)   # (1, S, S, 3)
        image_note = ""
    from ..backend import to_backend
    return model, name, img, to_backend(x, model.xp), image_note   # x where the weights are


def _pick_block(model, args):
    L = len(model.layers)
    if not 1 <= args.stage <= L:
        raise CliError(f"--stage: expected 1..{L} (the model has {L} stages), got {args.stage}")
    layer = model.layers[args.stage - 1]
    j = args.block if args.block is not None else min(1, len(layer.blocks) - 1)
    if not 0 <= j < len(layer.blocks):
        raise CliError(f"--block: stage {args.stage} has blocks 0..{len(layer.blocks) - 1}, "
                       f"got {j}")
    return f"layers.{args.stage - 1}.blocks.{j}", layer.blocks[j]


# ---------------------------------------------------------------------------- figures

def _figure(args):
    from .. import viz
    from ..viz._common import check_heads
    f = args.figure
    if f == "windows":
        if args.image:
            if args.size not in (None, 56):
                raise CliError("--size: with --image the map is the photo's 56x56 tokens")
            return viz.plot_window_partition(window=_given(args.window, 7), shift=args.shift,
                                             image=viz.sample_image(224))
        size, window, shift = _grid_options(args, 8, 4)
        return viz.plot_window_partition(size, window, shift)
    if f == "shift":
        size, window, shift = _grid_options(args, 8, 4)
        img = viz.sample_image(size * max(1, 224 // size)) if args.image else None
        return viz.plot_cyclic_shift(size, window, shift, image=img)
    if f == "regions":
        size, window, shift = _grid_options(args, 8, 4)
        if shift == 0:
            raise CliError("--shift: 0 means no shift and one region; pick 0 < shift < window")
        return viz.plot_region_numbering(size, window, shift)
    if f == "mask":
        size, window, shift = _grid_options(args, 8, 4)
        if shift == 0:
            raise CliError("--shift: 0 means no shift and no mask; pick 0 < shift < window")
        nW = (size // window) ** 2
        wid = _given(args.window_id, min(1, nW - 1))       # window 1: two regions
        return viz.plot_window_mask(size, window, shift, window_id=wid)
    if f == "stage-masks":
        size, window, shift = _grid_options(args, 56, 7)
        if shift == 0:
            raise CliError("--shift: 0 means no shift and no mask; pick 0 < shift < window")
        return viz.plot_stage_masks(size, window, shift)
    if f == "index":
        return viz.plot_relative_position_index(_given(args.window, 7))
    if f == "index-walk":
        return viz.plot_index_walkthrough(_given(args.window, 2))
    if f == "merge":
        return viz.plot_patch_merging(_given(args.size, 4))
    if f == "log-coords":
        return viz.plot_log_spaced_coordinates(_given(args.window, 8),
                                               new_window=args.new_window)
    model, name, img, x, image_note = _load_model(args)
    if f in ("cpb", "table-resize") or (f == "bias" and model.config.version == 2):
        return _window_figure(args, model, name)          # V2's bias is its cpb network
    heads = None if args.head is None else [args.head]
    if f == "cost":
        return viz.plot_attention_cost(model, name=name)
    if f == "bias":
        key, _ = _pick_block(model, args)
        table = model.params[f"{key}.attn.relative_position_bias_table"]
        return viz.plot_relative_position_bias(table, heads=heads, name=f"{key} of {name}")
    from ..grad_mode import no_grad
    if f == "hierarchy":
        with no_grad():                                    # no backward: no caches
            _, trace = model.trace(x)                      # (1, classes), shapes
        return viz.plot_hierarchy(model, trace, img, name + image_note)
    name += image_note
    key, blk = _pick_block(model, args)                    # checked before the slow forward
    check_heads(heads, blk.num_heads, 1)                   # viz's own check, made early
    with no_grad(keep_attention=True):                     # the probabilities, no caches
        _, trace = model.trace(x)                          # (1, classes), shapes
    H, W = dict(trace)[key][1:3]
    M = blk.window_size
    (Hp, Wp), shift = blk.window_shift_for(H, W)
    attn = blk.attention_weights()        # (1, nW, nH, N, N)
    wid = _given(args.window_id, viz.central_window(Hp, Wp, M))
    if f == "attention-weights":
        return viz.plot_window_attention(attn, window_id=wid, heads=heads, name=f"{key}, {name}")
    return viz.plot_query_attention(img, attn, (H, W), M, shift, window_id=wid,
                                    query=args.query, heads=heads, name=f"{key}, {name}")


def _window_figure(args, model, name):
    """cpb (a V2 model) and table-resize (a v1 model) for the block --stage/--block picks."""
    from .. import viz
    v2 = model.config.version == 2
    if args.figure != "bias" and (args.figure == "cpb") != v2:
        want = "a Swin V2 model, e.g. --model swinv2_t" if args.figure == "cpb" else \
            "a Swin v1 model, e.g. --model swin_t (V2 has no table to resize)"
        flag = "--model" if args.model else "--checkpoint"
        raise CliError(f"{flag}: the {args.figure} figure needs {want}; got "
                       f"{args.model or name}")
    key, blk = _pick_block(model, args)
    heads = None if args.head is None else [args.head]
    if v2:
        table = viz.attention_cpb_table(blk.attn)
        return viz.plot_cpb_table(table, heads=heads, name=f"{key} of {name}")
    new = _given(args.new_window, 12)
    if new <= 0:
        raise CliError(f"--new-window: expected a positive integer, got {new}")
    table = model.params[f"{key}.attn.relative_position_bias_table"]
    return viz.plot_table_resize(table, new, head=_given(args.head, 0),
                                 name=f"{key} of {name}")


def run(args):
    from .. import viz
    path = _output_path(args)
    if args.figure == "shift-gif":
        size, window, shift = _grid_options(args, 8, 4)
        img = viz.sample_image(size * max(1, 224 // size)) if args.image else None
        viz.save_shift_gif(path, size, window, shift, image=img)
    else:
        if args.dpi <= 0:
            raise CliError(f"--dpi: expected a positive integer, got {args.dpi}")
        fig = _figure(args)
        viz.save_figure(fig, path, dpi=args.dpi)
    print(f"wrote {path}")
    return 0
