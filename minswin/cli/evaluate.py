"""`minswin evaluate [CHECKPOINT]`: accuracy and confusion matrix of a trained checkpoint.

    minswin evaluate                                              # the shipped swin_digits
    minswin evaluate runs/digits/best.safetensors                 # the test split
    minswin evaluate runs/digits/best.safetensors --split val -o cm.png
"""
from .errors import CliError


def add_parser(sub):
    p = sub.add_parser(
        "evaluate", help="accuracy and confusion matrix of a checkpoint from `minswin train`",
        description="Rebuild the model and the data split recorded in a checkpoint written by "
                    "`minswin train`, then print the accuracy and the confusion matrix and "
                    "write the matrix as a PNG. With no checkpoint: the trained swin_digits "
                    "model that ships with minswin (minswin.pretrained).")
    p.add_argument("checkpoint", nargs="?", default=None, metavar="CHECKPOINT",
                   help="a .safetensors file written by `minswin train`, or the name of a "
                        "shipped model: swin_digits, swinv2_digits (default: swin_digits)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"),
                   help="which split of the recorded data (default: test)")
    p.add_argument("--data", default=None,
                   help="evaluate on other data: 'digits', a class-folder tree or an .npz "
                        "(with the checkpoint's classes and normalisation) (default: the data "
                        "recorded in the checkpoint)")
    p.add_argument("-o", "--out", default=None,
                   help="PNG for the confusion matrix (default: confusion_<split>.png next to "
                        "the checkpoint; for the shipped model in ./minswin-figures/)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per forward pass (default: 256, or fewer where 256 would not "
                        "fit in the memory available)")
    p.add_argument("--allow-nonfinite", action="store_true",
                   help="load weights that hold NaN or inf (to inspect a broken run); the "
                        "command still exits with 1 when the loss is not finite")
    p.set_defaults(func=run)


def run(args):
    import os
    import sys

    import numpy as np

    from ..training import (
        config_from_meta,
        confusion_matrix,
        evaluate_split,
        format_confusion,
        load_data,
        make_config,
        model_from_checkpoint,
        plot_confusion,
    )
    from ..weights import PRETRAINED, SEGMENTERS, pretrained_path
    if args.checkpoint in SEGMENTERS and not os.path.exists(args.checkpoint):
        raise CliError(f"CHECKPOINT: {args.checkpoint} is a shipped segmenter, and evaluate "
                       f"classifies: its test IoU is in its file's record (tutorial 12 prints "
                       f"it; minswin.segment.pretrained.segmenter_info({args.checkpoint!r}))")
    # a shipped model's name, unless a file of that name is here (a path wins, as it always did)
    shipped = args.checkpoint is None or (args.checkpoint in PRETRAINED
                                          and not os.path.exists(args.checkpoint))
    shipped_name = (args.checkpoint or "swin_digits") if shipped else None
    checkpoint = pretrained_path(shipped_name) if shipped else args.checkpoint
    if not os.path.exists(checkpoint):
        raise CliError(f"CHECKPOINT: expected a checkpoint file or one of the shipped models "
                       f"{', '.join(PRETRAINED)}, got {checkpoint!r} (no such file)")
    if os.path.isdir(checkpoint):
        raise CliError(f"CHECKPOINT: {checkpoint!r} is a folder; expected a .safetensors file "
                       "written by `minswin train`")
    if args.out is not None and not args.out.lower().endswith(".png"):
        raise CliError(f"--out: expected a .png file name, got {args.out!r}")
    if args.out is not None:                               # before the evaluation, not after
        from ..viz._common import check_writable
        try:
            check_writable(args.out)
        except OSError as err:
            why = str(err).split(": ", 1)[-1]              # "X is a file, not a directory", ...
            raise CliError(f"--out: expected a file in an existing folder, got {args.out!r} "
                           f"({why})") from None
    if args.batch_size is not None and args.batch_size <= 0:
        raise CliError(f"--batch-size: expected a positive integer, got {args.batch_size}")
    model, meta = model_from_checkpoint(checkpoint, allow_nonfinite=args.allow_nonfinite)
    cfg = make_config(config_from_meta(meta, checkpoint), data=args.data, limit=0)
    classes = list(meta["classes"])
    ds = load_data(cfg, model.config.img_size, np.asarray(meta["mean"], np.float32),
                   np.asarray(meta["std"], np.float32))
    if len(ds.classes) > len(classes):
        raise CliError(f"--data: {cfg.data!r} has {len(ds.classes)} classes, the checkpoint "
                       f"was trained on {len(classes)}")
    if list(ds.classes) != classes[:len(ds.classes)]:
        # labels are class positions: other names at the same positions would be scored
        # against the wrong classes without a word
        raise CliError(f"--data: expected the checkpoint's classes {classes}, got "
                       f"{list(ds.classes)} in {cfg.data!r}")
    split = getattr(ds, args.split)
    if len(split.y) == 0:
        raise CliError(f"--split: the {args.split} split of {cfg.data!r} has no images; "
                       "expected at least one")
    loss, acc, pred = evaluate_split(model, split, args.batch_size)
    cm = confusion_matrix(split.y, pred, len(classes))
    what = f"the shipped {shipped_name} model" if shipped else checkpoint
    from ..checks import escape_name  # the checkpoint's own words
    print(f"{what}: {escape_name(meta.get('kind', '?'))} checkpoint, epoch "
          f"{escape_name(meta['epoch'])}, {cfg.model} on {escape_name(cfg.data)} "
          f"({args.split} split, {len(split.y)} images)")
    print(f"loss {loss:.4f}")
    print(f"accuracy: {100 * acc:.1f}% ({int(np.trace(cm))}/{len(split.y)})")
    print("confusion matrix (rows: true class, columns: predicted):")
    print(format_confusion(cm, classes))
    folder = "minswin-figures" if shipped else os.path.dirname(os.path.abspath(checkpoint))
    out = args.out or os.path.join(folder, f"confusion_{args.split}.png")
    if shipped and args.out is None:
        os.makedirs(folder, exist_ok=True)
    plot_confusion(cm, classes, out, title=f"{args.split}: {100 * acc:.1f}% correct")
    print(f"wrote {out}")
    if not np.isfinite(loss):
        print(f"minswin evaluate: error: the loss is {loss}: these weights do not compute "
              "finite numbers, so the accuracy above means nothing", file=sys.stderr)
        return 1
    return 0
