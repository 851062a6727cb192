"""Checkpoints: formats, key-name maps, buffers checked not trusted, and bad files refused."""
import argparse
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

import minswin
from minswin.checkpoint import detect_format


def tiny(seed=1):
    return minswin.create_model("swin_micro", embed_dim=12, num_classes=5, seed=seed,
                                dtype="float64").eval()


def official_to_timm(k):
    m = re.match(r"layers\.(\d+)\.downsample\.(.*)", k)
    if m:
        return f"layers.{int(m.group(1)) + 1}.downsample.{m.group(2)}"
    return "head.fc." + k[5:] if k.startswith("head.") else k


def official_to_tv(k):
    if k.startswith("patch_embed.proj."):
        return "features.0.0." + k[len("patch_embed.proj."):]
    if k.startswith("patch_embed.norm."):
        return "features.0.2." + k[len("patch_embed.norm."):]
    m = re.match(r"layers\.(\d+)\.blocks\.(\d+)\.(.*)", k)
    if m:
        tail = m.group(3).replace("mlp.fc1.", "mlp.0.").replace("mlp.fc2.", "mlp.3.")
        return f"features.{2 * int(m.group(1)) + 1}.{m.group(2)}.{tail}"
    m = re.match(r"layers\.(\d+)\.downsample\.(.*)", k)
    if m:
        return f"features.{2 * int(m.group(1)) + 2}.{m.group(2)}"
    return k


@pytest.fixture
def x(rng):
    return rng.standard_normal((2, 32, 32, 3))


@pytest.mark.parametrize("ext", [".safetensors", ".npz"])
def test_round_trip(tmp_path, x, ext):
    a, b = tiny(1), tiny(2)
    path = tmp_path / f"m{ext}"
    minswin.save_checkpoint(path, a.state_dict(), metadata={"note": "hello"})
    state, meta = minswin.load_checkpoint(path, with_metadata=True)
    assert meta["note"] == "hello"
    assert not np.allclose(a.forward(x), b.forward(x))
    b.load_state_dict(state)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))


@pytest.mark.parametrize("rename,fmt", [(lambda k: k, "official"), (official_to_timm, "timm"),
                                        (official_to_tv, "torchvision")])
def test_timm_and_torchvision_names_load_to_the_same_model(x, rename, fmt):
    a, b = tiny(1), tiny(2)
    state = {rename(k): v.copy() for k, v in a.state_dict().items()}
    assert detect_format(state) == fmt
    b.load_state_dict(state)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))


def test_official_buffers_are_checked_then_dropped(x):
    a, b = tiny(1), tiny(2)
    state = dict(a.state_dict())
    state["layers.0.blocks.1.attn.relative_position_index"] = minswin.relative_position_index(4)
    state["layers.0.blocks.1.attn_mask"] = minswin.attention_mask(8, 8, 4, 2)
    b.load_state_dict(state)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    state["layers.0.blocks.1.attn_mask"] = minswin.attention_mask(8, 8, 4, 2) * 0
    with pytest.raises(ValueError, match=r"buffer 'layers.0.blocks.1.attn_mask'.*differs"):
        b.load_state_dict(state)


def test_torchvision_flat_relative_position_index_is_checked_then_dropped(x):
    """torchvision registers the index flattened, (N*N,); here M=2, written out by hand."""
    a, b = (minswin.create_model("swin_micro", embed_dim=12, num_classes=5, window_size=2,
                                 seed=seed, dtype="float64").eval() for seed in (1, 2))
    flat = np.array([4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4])
    state = {official_to_tv(k): v.copy() for k, v in a.state_dict().items()}
    for f, j in ((1, 0), (1, 1), (3, 0), (3, 1)):          # every block of both stages
        state[f"features.{f}.{j}.attn.relative_position_index"] = flat
    b.load_state_dict(state)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    key = "features.3.1.attn.relative_position_index"
    for wrong, shape in ((flat[::-1].copy(), r"\(16,\)"), (flat.reshape(2, 8), r"\(2, 8\)")):
        with pytest.raises(ValueError, match=r"buffer 'layers.1.blocks.1.attn."
                                             r"relative_position_index' " + shape + r" differs "
                                             r"from the one minswin computes \(4, 4\)"):
            b.load_state_dict({**state, key: wrong})


def _problem(state_edit, match):
    m = tiny(2)
    before = {k: v.copy() for k, v in m.params.items()}
    state = dict(tiny(1).state_dict())
    state_edit(state)
    with pytest.raises(ValueError, match=match):
        m.load_state_dict(state)
    for k, v in m.params.items():                          # unchanged after the refusal
        np.testing.assert_array_equal(v, before[k])


def test_missing_key_named():
    _problem(lambda s: s.pop("head.bias"), r"missing key 'head.bias' \(5,\)")


def test_extra_key_named():
    _problem(lambda s: s.update({"layers.9.foo": np.zeros(3)}), r"unexpected key 'layers.9.foo'")


def test_wrong_shape_named_with_both_shapes():
    _problem(lambda s: s.update({"head.weight": np.zeros((7, 24))}),
             r"'head.weight': expected shape \(5, 24\), got \(7, 24\)")


def test_wrong_shape_that_would_broadcast_is_refused():
    """A (1,) head.bias would broadcast into the (5,) parameter without a word: refused."""
    _problem(lambda s: s.update({"head.bias": np.full(1, 3.0, np.float32)}),
             r"'head.bias': expected shape \(5,\), got \(1,\)")


def test_wrong_dtype_kind():
    _problem(lambda s: s.update({"head.bias": np.zeros(5, np.int64)}),
             r"'head.bias': expected a floating-point tensor, got dtype int64")


def test_non_strict_reports_missing():
    m = tiny(2)
    state = dict(tiny(1).state_dict())
    state.pop("head.bias")
    assert m.load_state_dict(state, strict=False)["missing"] == ["head.bias"]


def test_bad_files(tmp_path):
    good = tmp_path / "good.safetensors"
    minswin.save_checkpoint(good, tiny().state_dict())
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        minswin.load_checkpoint(cut)
    junk = tmp_path / "junk.npz"
    junk.write_text("this is not a checkpoint")
    with pytest.raises(ValueError, match="not a readable .npz checkpoint"):
        minswin.load_checkpoint(junk)
    obj = tmp_path / "obj.npz"
    np.savez(obj, w=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="object arrays"):
        minswin.load_checkpoint(obj)
    with pytest.raises(ValueError, match=r"PyTorch pickle.*convert_torch_checkpoint.py"):
        minswin.load_checkpoint(tmp_path / "model.pth")
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        minswin.load_checkpoint(tmp_path / "absent.safetensors")
    with pytest.raises(ValueError, match=r"expected a .safetensors or .npz"):
        minswin.load_checkpoint(good.with_suffix(".txt"))


@pytest.mark.parametrize("ext", [".safetensors", ".npz"])
def test_save_writes_atomically_and_leaves_no_temporary(tmp_path, ext):
    path = tmp_path / f"w{ext}"
    minswin.save_checkpoint(path, {"a": np.arange(3.0)})
    minswin.save_checkpoint(path, {"a": np.arange(4.0)})               # replaces the file
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"w{ext}"]
    np.testing.assert_array_equal(minswin.load_checkpoint(path)["a"], np.arange(4.0))


@pytest.mark.parametrize("convert, key, official", [
    ("torchvision", "features.0.0.weight", "patch_embed.proj.weight"),
    ("torchvision", "features.0.2.bias", "patch_embed.norm.bias"),
    ("torchvision", "features.1.0.mlp.0.weight", "layers.0.blocks.0.mlp.fc1.weight"),
    ("torchvision", "features.1.0.mlp.3.bias", "layers.0.blocks.0.mlp.fc2.bias"),
    ("torchvision", "features.2.reduction.weight", "layers.0.downsample.reduction.weight"),
    ("torchvision", "features.7.1.attn.relative_position_bias_table",
     "layers.3.blocks.1.attn.relative_position_bias_table"),
    ("timm", "layers.1.downsample.norm.weight", "layers.0.downsample.norm.weight"),
    ("timm", "layers.3.blocks.0.mlp.fc2.bias", "layers.3.blocks.0.mlp.fc2.bias"),
])
def test_key_renames_on_literal_names_from_the_real_layouts(convert, key, official):
    """Written out by hand from torchvision's and timm's Swin-T state dicts, so a layout
    mistake shared by the converter and the round-trip test above would still show here."""
    from minswin.checkpoint import timm_to_official, torchvision_to_official
    fn = torchvision_to_official if convert == "torchvision" else timm_to_official
    assert fn(key) == official


# ---------------------------------------------------------------------------- the .pth converter

def _converter():
    """scripts/convert_torch_checkpoint.py, imported from its path (it is not a package)."""
    path = Path(__file__).resolve().parents[1] / "scripts" / "convert_torch_checkpoint.py"
    spec = importlib.util.spec_from_file_location("convert_torch_checkpoint", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_converter_widens_half_precision_and_names_what_it_leaves_out(tmp_path, capsys):
    torch = pytest.importorskip("torch", reason="the converter needs torch")
    a = tiny(1)
    state = {k: torch.from_numpy(v.copy()) for k, v in a.state_dict().items()}
    state["head.weight"] = state["head.weight"].to(torch.bfloat16)   # NumPy has no bfloat16
    state["head.bias"] = state["head.bias"].to(torch.float16)
    state["layers.0.blocks.1.attn.relative_position_index"] = \
        torch.from_numpy(minswin.relative_position_index(4))        # an integer buffer
    state["n_averaged"] = 3                                          # not a tensor
    src, dst = tmp_path / "m.pth", tmp_path / "m.safetensors"
    torch.save({"model": state, "epoch": 7}, src)
    _converter().main(str(src), str(dst))
    out = capsys.readouterr().out
    assert "left out the other top-level entries: epoch" in out
    assert "skipped 1 entry that is not a tensor: n_averaged (int)" in out
    assert "as float32: head.weight (bfloat16), head.bias (float16)" in out
    loaded = minswin.load_checkpoint(dst)
    assert "n_averaged" not in loaded and len(loaded) == len(state) - 1
    assert loaded["head.weight"].dtype == loaded["head.bias"].dtype == np.float32
    np.testing.assert_array_equal(loaded["head.weight"], state["head.weight"].float().numpy())
    np.testing.assert_array_equal(loaded["head.bias"], state["head.bias"].float().numpy())
    assert loaded["layers.0.blocks.1.attn.relative_position_index"].dtype == np.int64
    np.testing.assert_array_equal(loaded["patch_embed.proj.weight"],
                                  a.params["patch_embed.proj.weight"])
    b = tiny(2)
    b.load_state_dict(loaded)                              # the buffer is checked, then dropped
    np.testing.assert_array_equal(b.params["head.bias"], loaded["head.bias"])


def test_converter_loads_with_weights_only_and_refuses_other_objects(tmp_path):
    """A pickled object that is not a tensor or a plain container is refused, not executed:
    the official training checkpoints' `config` entry is such an object."""
    torch = pytest.importorskip("torch", reason="the converter needs torch")
    src = tmp_path / "m.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "args": argparse.Namespace(lr=0.1)}, src)
    with pytest.raises(ValueError, match=r"src: torch's restricted loader \(weights_only=True\) "
                                         r"refused .*argparse\.Namespace"):
        _converter().main(str(src), str(tmp_path / "m.safetensors"))
    assert not (tmp_path / "m.safetensors").exists()


def test_strict_load_that_matches_nothing_says_so_not_every_missing_key():
    """Names from another model (here a `backbone.` prefix) are one clear refusal, strict or
    not: the names read and the names expected, not a line per missing parameter."""
    m = tiny(2)
    state = {f"backbone.{k}": v for k, v in tiny(1).state_dict().items()}
    for strict in (True, False):
        with pytest.raises(ValueError) as err:
            m.load_state_dict(state, strict=strict)
        msg = str(err.value)
        assert msg.startswith(f"state: none of its {len(state)} tensor(s) matches a parameter")
        assert "backbone.patch_embed.proj.weight" in msg and "missing key" not in msg
