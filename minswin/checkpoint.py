"""Checkpoints: `.safetensors` and `.npz`; official, timm, torchvision and transformers key
names; strict checks, and a report of what a non-strict load did.

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

from .atomic import write_atomically
from .backend import to_backend, to_numpy
from .checks import escape_name
from .npz import BadNpz, read_npz
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
    from safetensors import SafetensorError

    def write(tmp):
        if ext == ".safetensors":
            from safetensors.numpy import save_file
            save_file(arrays, tmp, metadata=metadata or None)
        else:
            np.savez(tmp, **arrays, **{_META_KEY: np.array(json.dumps(metadata))})
    try:
        write_atomically(path, write)
    except (OSError, SafetensorError) as err:     # disk full, no permission (safetensors
        raise OSError(f"path: could not write {path!r} ({type(err).__name__}: {err}); "
                      "any earlier file there is unchanged") from None   # wraps I/O errors)


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
    if not os.path.isfile(path):                   # a FIFO or a device could block for ever
        raise ValueError(f"path: {path!r} is not a regular file")
    read = _read_safetensors if path.endswith(".safetensors") else _read_npz
    state, meta = read(path)
    return (state, meta) if with_metadata else state


# the safetensors dtypes NumPy has, and bfloat16, which it lacks: read here and widened to
# float32 exactly (a bfloat16 is the top 16 bits of the float32 of the same value)
_SAFETENSORS_NUMPY = {"BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64", "F16",
                      "F32", "F64"}


def _read_safetensors(path):
    from safetensors import safe_open
    try:
        with safe_open(path, framework="numpy") as f:
            meta = dict(f.metadata() or {})
            keys = list(f.keys())
            dtypes = {k: f.get_slice(k).get_dtype() for k in keys}
            other = {k: d for k, d in dtypes.items() if d not in _SAFETENSORS_NUMPY | {"BF16"}}
            if other:
                k = next(iter(other))
                raise ValueError(f"tensor {k!r} has dtype {other[k]}, which minswin does not "
                                 "read (it reads BF16, F16, F32, F64 and integers)"
                                 + (f"; {len(other) - 1} more like it" if len(other) > 1
                                    else ""))
            state = {k: f.get_tensor(k) for k in keys if dtypes[k] != "BF16"}
    except Exception as err:   # safetensors raises its own error types for corrupt files
        raise ValueError(f"path: {path!r} is not a readable safetensors file ({err})") from None
    bf16 = [k for k in keys if dtypes[k] == "BF16"]
    if bf16:
        state.update(_read_bfloat16(path, bf16))
        state = {k: state[k] for k in keys}                # the file's order
    return state, meta


def _read_bfloat16(path, keys):
    """{key: float32 array} for the BF16 tensors of a safetensors file (already validated by
    safe_open): the raw 16 bits, shifted into the top half of a float32."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        out = {}
        for k in keys:
            start, stop = header[k]["data_offsets"]
            f.seek(8 + n + start)
            raw = np.frombuffer(f.read(stop - start), dtype="<u2")
            out[k] = (raw.astype(np.uint32) << 16).view(np.float32).reshape(header[k]["shape"])
    return out


def _read_npz(path):
    if not zipfile.is_zipfile(path):
        raise ValueError(f"path: {path!r} is not a readable .npz checkpoint (not a zip archive)")
    try:
        state = read_npz(path, text_ok=(_META_KEY,))
        meta = json.loads(str(state.pop(_META_KEY))) if _META_KEY in state else {}
    except BadNpz as err:
        raise ValueError(f"path: {path!r}: {err}") from None
    except (ValueError, zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"path: {path!r} is not a readable .npz checkpoint ({err})") from None
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError(f"path: {path!r}: its {_META_KEY!r} member is not a JSON object of "
                         "strings (what save_checkpoint writes)")
    return state, meta


# ---------------------------------------------------------------------------- key names

def detect_format(keys):
    """'official', 'timm', 'torchvision' or 'transformers' from the key names."""
    keys = set(keys)
    if any(k.startswith("features.") for k in keys):
        return "torchvision"
    if any(re.match(r"(swin\.|swinv2\.)?(embeddings|encoder)\.", k) for k in keys):
        return "transformers"
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


# transformers' Swin v1 and V2, both generations of v1 names: the hub files' `attention.self.
# query` ... `intermediate.dense` (what save_pretrained still writes) and transformers 5's
# module names `attention.q_proj` ... `mlp.fc1`. `swin.` (`swinv2.`) prefixes a model with a
# head; `classifier` is the head. query, key and value are three Linears: renamed to
# attn.q/k/v here, then concatenated into official's one qkv Linear, in that order, by
# _merge_qkv. V2's `continuous_position_bias_mlp` is official's `cpb_mlp`.
_TRANSFORMERS = [
    (r"^swin(v2)?\.", ""),
    (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"^embeddings\.norm\.", "patch_embed.norm."),
    (r"^encoder\.layers\.", "layers."),
    (r"\.layernorm_before\.", ".norm1."),
    (r"\.layernorm_after\.", ".norm2."),
    (r"\.attention\.(self|relative_position_bias)\.(relative_\w+)$", r".attn.\2"),
    (r"\.attention\.self\.logit_scale$", ".attn.logit_scale"),
    (r"\.attention\.self\.continuous_position_bias_mlp\.", ".attn.cpb_mlp."),
    (r"\.attention\.self\.(query|key|value)\.", lambda m: f".attn.{m.group(1)[0]}."),
    (r"\.attention\.([qkv])_proj\.", r".attn.\1."),
    (r"\.attention\.(output\.dense|o_proj)\.", ".attn.proj."),
    (r"\.(intermediate\.dense|mlp\.fc1)\.", ".mlp.fc1."),
    (r"\.(?<!attention\.)(output\.dense|mlp\.fc2)\.", ".mlp.fc2."),
    (r"^layernorm\.", "norm."),
    (r"^classifier\.", "head."),
]


def transformers_to_official(key):
    """One transformers Swin key to its official name (q/k/v become attn.q/k/v)."""
    for pattern, repl in _TRANSFORMERS:
        key = re.sub(pattern, repl, key)
    return key


def _merge_qkv(state):
    """attn.q/k/v.{weight,bias} -> attn.qkv.{weight,bias}: rows [q; k; v], official's order.

    Swin V2 has no key bias: q and v biases alone are official V2's attn.q_bias and v_bias.
    A block with only some of the three otherwise keeps them under their q/k/v names, so the
    loader reports them as unexpected (and qkv as missing) instead of guessing."""
    out, parts = {}, {}
    for key, value in state.items():
        m = re.match(r"(.*\.attn)\.([qkv])\.(weight|bias)$", key)
        if m:
            parts.setdefault((m.group(1), m.group(3)), {})[m.group(2)] = (key, value)
        else:
            out[key] = value
    for (prefix, kind), got in parts.items():
        if set(got) == {"q", "k", "v"}:
            out[f"{prefix}.qkv.{kind}"] = np.concatenate(
                [to_numpy(got[c][1]) for c in "qkv"])      # (3C, C) or (3C,)
        elif kind == "bias" and set(got) == {"q", "v"}:    # V2: [q_bias, 0, v_bias]
            out[f"{prefix}.q_bias"], out[f"{prefix}.v_bias"] = got["q"][1], got["v"][1]
        else:
            out.update(dict(got.values()))
    return out


# the key maps, one entry per format: name -> function from a state dict to official names
KEY_MAPS = {
    "official": dict,
    "timm": lambda state: {timm_to_official(k): v for k, v in state.items()},
    "torchvision": lambda state: {torchvision_to_official(k): v for k, v in state.items()},
    "transformers": lambda state: _merge_qkv(
        {transformers_to_official(k): v for k, v in state.items()}),
}


def to_official_keys(state, fmt=None):
    """Rename a timm, torchvision or transformers state dict to official names.

    fmt: one of KEY_MAPS, or None to detect it from the names."""
    fmt = detect_format(state) if fmt is None else fmt
    if fmt not in KEY_MAPS:
        raise ValueError(f"fmt: expected one of {sorted(KEY_MAPS)} or None, got {fmt!r}")
    return KEY_MAPS[fmt](state)


# ---------------------------------------------------------------------------- loading into a model

_BUFFER = re.compile(r"layers\.(\d+)\.blocks\.(\d+)\.(attn\.relative_position_index|attn_mask)$")


def _check_buffer(model, key, value):
    """Compare a checkpoint buffer with minswin's own constant.

    Returns None when it is equal (then it is dropped), "unexpected" when the model has no
    such buffer, or a one-line problem when it differs."""
    m = _BUFFER.match(key)
    if not m:
        return "unexpected"
    i, j = int(m.group(1)), int(m.group(2))
    if i >= len(model.layers) or j >= len(model.layers[i].blocks):
        return "unexpected"
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
        return (f"buffer {key!r} {stored} differs from the one minswin computes "
                f"{tuple(ours.shape)}")
    return None


def nonfinite_problems(arrays, advice=""):
    """One line per tensor holding NaN or inf, with the counts (and `advice`)."""
    problems = []
    for key, value in arrays.items():
        n_nan, n_inf = int(np.isnan(value).sum()), int(np.isinf(value).sum())
        if n_nan or n_inf:
            problems.append(f"{key!r}: {n_nan + n_inf} of {value.size} values are not finite "
                            f"({n_nan} NaN, {n_inf} inf){advice}")
    return problems


class LoadReport(dict):
    """What load_state_dict did, as a dict: "format" (of the key names), "loaded", "missing",
    "unexpected" (lists of official key names) and "buffers" (checked, equal, dropped).

    print(report) gives a short summary; report.summary(all_keys=True) lists every key."""

    def summary(self, all_keys=False):
        lines = [f"loaded {len(self['loaded'])} parameter tensor(s) ({self['format']} names); "
                 f"{len(self['buffers'])} buffer(s) checked and dropped"]
        for what in ("missing", "unexpected"):
            keys = self[what]
            shown = [escape_name(k) for k in keys] if all_keys or len(keys) <= 8 else \
                [escape_name(k) for k in keys[:8]] + [f"... {len(keys) - 8} more"]
            lines.append(f"{what}: {len(keys)}" + (": " + ", ".join(shown) if keys else ""))
        return "\n".join(lines)

    def __str__(self):
        return self.summary()


def load_state_dict(model, state, strict=True, fmt=None, allow_nonfinite=False,
                    resize_windows=False):
    """Copy a state dict (official, timm, torchvision or transformers names) into `model`.

    In this order:
    1. names: the format's key map (fmt: one of KEY_MAPS, or None to detect it from the
       names); then v1 bias tables made for another window are resized to the model's when
       resize_windows, or refused at once naming the flag (minswin/window_tables.py);
    2. a state dict of which no key names a parameter is refused with the names it has and
       the names the model expects (strict or not: nothing is ever loaded in silence);
    3. every other problem is collected: Swin V2's own (torchvision's qkv.bias split into
       q_bias/v_bias, coordinate tables checked and dropped: checkpoint_v2.py), buffers that
       differ from minswin's constants, shape or dtype-kind mismatches, missing and unexpected
       keys (problems when strict), then NaN or inf in what would be loaded (unless
       allow_nonfinite, for inspecting a broken run). Any problem raises one ValueError
       listing them all, and the model is unchanged: nothing is written unless the whole
       state dict is accepted.

    Returns a LoadReport: {"format", "loaded", "missing", "unexpected", "buffers"}.
    """
    from .window_tables import resize_window_tables
    fmt = detect_format(state) if fmt is None else fmt
    state = resize_window_tables(model, to_official_keys(state, fmt), resize_windows)
    if not any(key in model.params for key in state):
        found = ", ".join(escape_name(k) for k in list(state)[:3]) or "none"
        raise ValueError(
            f"state: none of its {len(state)} tensor(s) matches a parameter of the model "
            f"(names read as {fmt}: {found}, ...; the model expects "
            f"{', '.join(list(model.params)[:3])}, ...); the model is unchanged")
    problems = []
    if model.config.version == 2:                          # Swin V2's own names and buffers
        from .checkpoint_v2 import v2_state_to_official
        state = v2_state_to_official(model, state, fmt, problems, resize_windows)
    unexpected, buffers, accepted = [], [], {}
    for key, value in state.items():
        value = to_numpy(value)
        if key.endswith(("relative_position_index", "attn_mask")):
            verdict = _check_buffer(model, key, value)
            if verdict == "unexpected":
                unexpected.append(key)
            elif verdict:
                problems.append(verdict)
            else:
                buffers.append(key)
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
    problems += [] if allow_nonfinite else nonfinite_problems(
        accepted, "; to load them anyway pass allow_nonfinite=True (minswin evaluate and "
                  "minswin plot: --allow-nonfinite)")
    if problems:
        raise ValueError(f"state: {len(problems)} problem(s) loading the checkpoint ({fmt} "
                         "names); the model is unchanged:\n  " + "\n  ".join(problems))
    xp = model.xp
    for key, value in accepted.items():
        model.params[key][...] = to_backend(value.astype(model.dtype), xp)
    return LoadReport(format=fmt, loaded=list(accepted), missing=missing,
                      unexpected=unexpected, buffers=buffers)
