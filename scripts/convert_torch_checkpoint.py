"""Convert a PyTorch checkpoint (official, timm, torchvision or transformers Swin) to safetensors.

minswin never unpickles files. This script does, once, with torch's restricted loader
(`weights_only=True`, which refuses arbitrary Python objects) on a file you trust, and writes
plain tensors that minswin loads:

    pip install torch safetensors
    python scripts/convert_torch_checkpoint.py swin_tiny_patch4_window7_224.pth swin_t.safetensors

A transformers `pytorch_model.bin` is the same kind of file (a pickled dict of tensors) and
converts the same way; write it beside the folder's config.json as model.safetensors and
`minswin.from_pretrained(folder)` reads the folder:

    python scripts/convert_torch_checkpoint.py swin-tiny/pytorch_model.bin \
        swin-tiny/model.safetensors

A sharded `.bin` (pytorch_model.bin.index.json) is converted one shard at a time; the index
then needs its file names changed by hand, so prefer a folder's safetensors where it has one.

Official checkpoints keep their weights under the "model" key; that nesting is unwrapped and
the other top-level entries (optimizer, epoch, ...) are named and left out. Entries of the state
dict that are not tensors are named and left out. bfloat16 and float16 tensors are written as
float32 (NumPy has no bfloat16; the widening is exact). Key names are kept:
`model.load_state_dict` maps timm/torchvision names itself.
"""
import os
import pickle
import sys

NESTING = ("model", "state_dict", "model_state")   # where training checkpoints keep weights


def to_arrays(obj):
    """{name: NumPy array} from what torch.load returned, and notes on what was left or changed.

    Returns (arrays, notes); notes is a list of one-line messages for the user.
    """
    import torch

    notes = []
    for key in NESTING:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            others = [k for k in obj if k != key]
            if others:
                notes.append(f"took the weights under {key!r}; left out the other top-level "
                             f"entries: {', '.join(map(str, others))}")
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ValueError(f"checkpoint: expected a dict of tensors (possibly under one of "
                         f"{list(NESTING)}), got {type(obj).__name__}")
    arrays, skipped, widened = {}, [], []
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            skipped.append(f"{k} ({type(v).__name__})")
            continue
        t = v.detach().cpu()
        if t.is_floating_point() and t.dtype not in (torch.float32, torch.float64):
            widened.append(f"{k} ({str(t.dtype).replace('torch.', '')})")
            t = t.to(torch.float32)                        # exact for bfloat16 and float16
        arrays[str(k)] = t.contiguous().numpy()
    if skipped:
        what = "entry that is not a tensor" if len(skipped) == 1 else \
            "entries that are not tensors"
        notes.append(f"skipped {len(skipped)} {what}: {', '.join(skipped)}")
    if widened:
        notes.append(f"wrote {len(widened)} narrower float tensor(s) as float32: "
                     f"{', '.join(widened)}")
    if not arrays:
        raise ValueError("checkpoint: found no tensors to convert")
    return arrays, notes


def _unpickler_reason(err):
    """The line after torch's "WeightsUnpickler error:" (what it refused), or ''."""
    lines = [ln.strip() for ln in str(err).splitlines()]
    for i, ln in enumerate(lines):
        if "WeightsUnpickler error:" in ln:
            rest = ln.split("WeightsUnpickler error:", 1)[1].strip()
            return rest or next((x for x in lines[i + 1:] if x), "")
    return ""


def main(src, dst):
    import torch
    from safetensors.numpy import save_file

    try:
        obj = torch.load(src, map_location="cpu", weights_only=True)
    except OSError as err:
        raise ValueError(f"src: cannot read {src!r} ({err.strerror or err})") from None
    except pickle.UnpicklingError as err:
        why = _unpickler_reason(err)
        if why.startswith("Unsupported operand"):          # not a pickle at all
            raise ValueError(f"src: {src!r} is not a PyTorch checkpoint (torch.load: {why})") \
                from None
        raise ValueError(
            f"src: torch's restricted loader (weights_only=True) refused {src!r}: it holds "
            "Python objects besides tensors and plain containers"
            + (f" ({why})" if why else "") + ". This script will not unpickle them; if you "
            "trust the file, save just its state_dict from your own code and convert that"
        ) from None
    except RuntimeError as err:                            # e.g. a truncated zip archive
        raise ValueError(f"src: {src!r} is not a readable PyTorch checkpoint "
                         f"({str(err).splitlines()[0].split('. ')[0]})") from None
    arrays, notes = to_arrays(obj)
    for note in notes:
        print(note)
    folder = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(folder):
        raise ValueError(f"dst: the folder {folder!r} does not exist")
    save_file(arrays, dst)
    print(f"wrote {len(arrays)} tensors to {dst}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: python scripts/convert_torch_checkpoint.py IN.pth|IN.bin OUT.safetensors",
              file=sys.stderr)
        sys.exit(2)
    try:
        main(sys.argv[1], sys.argv[2])
    except ValueError as err:
        print(f"convert_torch_checkpoint: {err}", file=sys.stderr)
        sys.exit(2)
