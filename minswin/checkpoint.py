"""Checkpoints: `.safetensors` and `.npz`, official/timm/torchvision key names, strict checks.

No pickle anywhere: safetensors cannot hold code, and `.npz` files are opened with
allow_pickle=False (an object array is refused). PyTorch `.pth`/`.pt` files are pickles: they
are refused with the command that converts them (scripts/convert_torch_checkpoint.py).

Buffers found in a checkpoint (`relative_position_index`, `attn_mask`) are compared with what
minswin computes and then dropped: they are constants, never trusted from a file. The index is
accepted in the official (N, N) layout and in torchvision's flattened (N*N,) one.
"""
import json
import os
import re
import zipfile

import numpy as np

from .backend import to_backend, to_numpy
from .ops.masks import attention_mask, relative_position_index

_META_KEY = "__metadata__"


# ---------------------------------------------------------------------------- files

def save_checkpoint(path, state, metadata=None):
    """Write {name: array} to `.safetensors` or `.npz` (by extension), arrays from any backend.

    metadata: an optional {str: str} dict stored beside the tensors.
    The file is written under a temporary name and then renamed, so an interrupted write
    never leaves a half-written file in place of a good one.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1]
    if ext not in (".safetensors", ".npz"):
        raise ValueError(f"path: expected a .safetensors or .npz file name, got {path!r}")
    arrays = {k: np.ascontiguousarray(to_numpy(v)) for k, v in state.items()}
    metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
    if ext == ".npz" and _META_KEY in arrays:
        raise ValueError(f"state: the key {_META_KEY!r} is reserved")
    tmp = path + ".tmp" + ext                              # same extension: same writer
    if ext == ".safetensors":
        from safetensors.numpy import save_file
        save_file(arrays, tmp, metadata=metadata or None)
    else:
        np.savez(tmp, **arrays, **{_META_KEY: np.array(json.dumps(metadata))})
    os.replace(tmp, path)


def load_checkpoint(path, with_metadata=False):
    """Read a `.safetensors` or `.npz` checkpoint into {name: NumPy array} (and metadata)."""
    path = os.fspath(path)
    if path.endswith((".pth", ".pt", ".bin", ".ckpt")):
        raise ValueError(
            f"path: {path!r} is a PyTorch pickle, which minswin never unpickles. Convert it "
            "once with torch's safe loader: python scripts/convert_torch_checkpoint.py "
            f"{path} model.safetensors")
    if not path.endswith((".safetensors", ".npz")):
        raise ValueError(f"path: expected a .safetensors or .npz file, got {path!r}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no such checkpoint file {path!r}")
    read = _read_safetensors if path.endswith(".safetensors") else _read_npz
    state, meta = read(path)
    return (state, meta) if with_metadata else state


def _read_safetensors(path):
    from safetensors import safe_open
    try:
        with safe_open(path, framework="numpy") as f:
            meta = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:   # safetensors raises its own error types for corrupt files
        raise ValueError(f"path: {path!r} is not a readable safetensors file ({err})") from None
    return state, meta


def _read_npz(path):
    if not zipfile.is_zipfile(path):
        raise ValueError(f"path: {path!r} is not a readable .npz checkpoint (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as f:
            state, meta = {}, {}
            for k in f.files:
                if k == _META_KEY:
                    meta = json.loads(str(f[k]))
                else:
                    state[k] = f[k]
    except ValueError as err:
        if "pickle" in str(err).lower() or "object" in str(err).lower():
            raise ValueError(f"path: {path!r} holds object arrays, which would need unpickling;"
                             " minswin refuses them. Save plain numeric arrays") from None
        raise ValueError(f"path: {path!r} is not a readable .npz checkpoint ({err})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"path: {path!r} is not a readable .npz checkpoint ({err})") from None
    return state, meta


# ---------------------------------------------------------------------------- key names

def detect_format(keys):
    """'official', 'timm' or 'torchvision' from the key names."""
    keys = set(keys)
    if any(k.startswith("features.") for k in keys):
        return "torchvision"
    merges = {int(m.group(1)) for k in keys if (m := re.match(r"layers\.(\d+)\.downsample\.", k))}
    if "head.fc.weight" in keys or (merges and 0 not in merges):
        return "timm"
    return "official"


def timm_to_official(key):
    """timm: merging at the *start* of stages 1..3 and `head.fc`; official: end of 0..2, `head`."""
    m = re.match(r"layers\.(\d+)\.downsample\.(.*)", key)
    if m:
        return f"layers.{int(m.group(1)) - 1}.downsample.{m.group(2)}"
    if key.startswith("head.fc."):
        return "head." + key[len("head.fc."):]
    return key


def torchvision_to_official(key):
    """features.0.0/0.2 = patch_embed.proj/norm; features.{2i+1}.j = layers.i.blocks.j;
    features.{2i+2} = layers.i.downsample; mlp.0/mlp.3 = mlp.fc1/fc2."""
    if key.startswith("features.0.0."):
        return "patch_embed.proj." + key[len("features.0.0."):]
    if key.startswith("features.0.2."):
        return "patch_embed.norm." + key[len("features.0.2."):]
    m = re.match(r"features\.(\d+)\.(.*)", key)
    if m:
        f, rest = int(m.group(1)), m.group(2)
        if f % 2 == 1:
            j, tail = rest.split(".", 1)
            tail = re.sub(r"^mlp\.0\.", "mlp.fc1.", re.sub(r"^mlp\.3\.", "mlp.fc2.", tail))
            return f"layers.{(f - 1) // 2}.blocks.{j}.{tail}"
        return f"layers.{(f - 2) // 2}.downsample.{rest}"
    return key


def to_official_keys(state):
    """Rename a timm or torchvision state dict to official names (official passes through)."""
    fmt = detect_format(state)
    rename = {"timm": timm_to_official, "torchvision": torchvision_to_official}.get(fmt)
    return dict(state) if rename is None else {rename(k): v for k, v in state.items()}


# ---------------------------------------------------------------------------- loading into a model

def _check_buffer(model, key, value, problems):
    """Compare a checkpoint buffer with minswin's own constant; record a problem if they differ."""
    m = re.match(r"layers\.(\d+)\.blocks\.(\d+)\.(attn\.relative_position_index|attn_mask)$", key)
    if not m:
        problems.append(f"unexpected buffer {key!r} {tuple(value.shape)}")
        return
    i, j = int(m.group(1)), int(m.group(2))
    if i >= len(model.layers) or j >= len(model.layers[i].blocks):
        problems.append(f"unexpected buffer {key!r}: the model has no such block")
        return
    blk = model.layers[i].blocks[j]
    stored = tuple(value.shape)
    if m.group(3) == "attn_mask":
        H, W = blk.input_resolution
        (Hp, Wp), shift = blk.window_shift_for(H, W)
        ours = attention_mask(Hp, Wp, blk.window_size, shift)
    else:
        ours = relative_position_index(blk.window_size)
        if stored == (ours.size,):                         # torchvision keeps it flat, (N*N,)
            value = value.reshape(ours.shape)
    if value.shape != ours.shape or not np.array_equal(np.asarray(value, ours.dtype), ours):
        problems.append(f"buffer {key!r} {stored} differs from the one minswin computes "
                        f"{tuple(ours.shape)}")


def load_state_dict(model, state, strict=True, resize_windows=False):
    """Copy a state dict (official, timm or torchvision names) into `model`'s parameters.

    Every problem is collected first: missing keys, unexpected keys, shape or dtype-kind
    mismatches, buffers that differ from minswin's constants. Shape/dtype/buffer problems
    always raise; missing/unexpected keys raise when strict. Nothing is written unless the
    whole state dict is accepted. Returns {"missing": [...], "unexpected": [...]}.

    resize_windows: resize v1 tables made for another window (minswin/window_tables.py).
    """
    from .window_tables import resize_window_tables
    state = resize_window_tables(model, to_official_keys(state), resize_windows)
    problems, unexpected, accepted = [], [], {}
    for key, value in state.items():
        value = to_numpy(value)
        if key.endswith(("relative_position_index", "attn_mask")):
            _check_buffer(model, key, value, problems)
            continue
        if key not in model.params:
            unexpected.append(key)
            continue
        ours = model.params[key]
        if value.dtype.kind != "f":
            problems.append(f"{key!r}: expected a floating-point tensor, got dtype {value.dtype}")
        elif tuple(value.shape) != tuple(ours.shape):
            problems.append(f"{key!r}: expected shape {tuple(ours.shape)}, got "
                            f"{tuple(value.shape)} in the checkpoint")
        else:
            accepted[key] = value
    missing = [k for k in model.params if k not in state]
    if strict:
        problems += [f"missing key {k!r} {tuple(model.params[k].shape)}" for k in missing]
        problems += [f"unexpected key {k!r} {tuple(np.shape(state[k]))}" for k in unexpected]
    if problems:
        raise ValueError(f"state: {len(problems)} problem(s) loading the checkpoint; the model "
                         "is unchanged:\n  " + "\n  ".join(problems))
    xp = model.xp
    for key, value in accepted.items():
        model.params[key][...] = to_backend(value.astype(model.dtype), xp)
    return {"missing": missing, "unexpected": unexpected}
