"""Weights folders: transformers and timm folders written by the real libraries, loaded by
`minswin.from_pretrained` and compared with the library that wrote them; minswin's own
folders; headless models; non-strict loads that say what they did; bad folders refused.

transformers and timm are optional test oracles (like torch): their tests are skipped with the
reason where they are absent. Nothing is downloaded: every folder is written here.
"""
import json
import re
import sys

import numpy as np
import pytest

import minswin
from minswin.checkpoint import detect_format, to_official_keys
from minswin.gradcheck import TOL_MODEL, check_module

# the test config: Swin-T's patch and window, three narrow stages so the tests stay fast.
# Maps 28, 14, 7 at 112 (stage 3: the window covers the map, shift off); 32x40, 16x20, 8x10
# at 128x160 (padded to multiples of 7 in every stage, shift on everywhere)
SMALL = dict(image_size=112, patch_size=4, embed_dim=16, depths=[2, 2, 2],
             num_heads=[2, 2, 4], window_size=7)
OWN, PADDED = (112, 112), (128, 160)
LABELS = ["cat", "dog", "emu", "fox", "gnu"]
TOL = {"float32": 2e-4, "float64": 1e-10}                 # |a-b| <= TOL * (1 + |ref|)

_keep = []          # the torchvision op schemas defined below live as long as the session


def _allow_cpu_torch_with_cuda_torchvision(torch):
    """Let timm/transformers import where torchvision is a CUDA build beside a CPU torch.

    pip installs PyPI's torchvision (a CUDA build) for timm; its C ops then cannot load next
    to the CPU torch, and its pure-Python part (all timm and transformers use here) fails on
    registering fake kernels for two ops that were never defined. Defining those two schemas
    lets it import; no torchvision op runs in these tests."""
    try:
        import torchvision
        return
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]                              # the half-imported package
    lib = torch.library.Library("torchvision", "DEF")
    for op in ("nms", "qnms"):
        lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _keep.append(lib)
    import torchvision  # noqa: F401


def oracle(name):
    """Import the optional test oracle `name` (transformers or timm), or skip with why."""
    torch = pytest.importorskip("torch", reason="torch (the test oracles' base) is not "
                                                "installed")
    try:
        _allow_cpu_torch_with_cuda_torchvision(torch)
    except ImportError:
        pass                                   # no torchvision: transformers does without
    return pytest.importorskip(name, reason=f"{name} (a test oracle) is not installed")


def randomise_torch(net, seed=0):
    """Every term counts (SPEC 14): weights ~ N(0, 1/fan_in), LN affines 1 + N(0, .5^2),
    biases and bias tables N(0, .5^2)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, p in net.named_parameters():
            r = torch.randn(p.shape, generator=g, dtype=torch.float64)
            if k.endswith(("relative_position_bias_table", ".bias")):
                v = 0.5 * r
            elif p.ndim == 1:
                v = 1.0 + 0.5 * r
            else:
                v = r / np.sqrt(np.prod(p.shape[1:]))
            p.copy_(v.to(p.dtype))


def images(hw, seed=0, dtype="float64", batch=2):
    return np.random.default_rng(seed).standard_normal((batch, *hw, 3)).astype(dtype)


def assert_close(ours, ref, dtype):
    err = np.abs(ours - ref) / (1 + np.abs(ref))
    assert err.max() <= TOL[dtype], f"max error {err.max():.2e} > {TOL[dtype]:.0e}"
    return float(np.abs(ours - ref).max())


# ---------------------------------------------------------------------------- transformers

# V2: two stages, so that no stage shrinks its window at 112 (transformers' V2 decides window
# and shift when it is built, for its own size, and keeps them at every size)
SMALL_V2 = dict(SMALL, depths=[2, 2], num_heads=[2, 4], pretrained_window_sizes=[5, 3])


def hf_classes(version):
    """(config, classifier, base model) classes of transformers' Swin v1 or V2."""
    transformers = oracle("transformers")
    if version == 2:
        return (transformers.Swinv2Config, transformers.Swinv2ForImageClassification,
                transformers.Swinv2Model)
    return (transformers.SwinConfig, transformers.SwinForImageClassification,
            transformers.SwinModel)


def hf_folder(tmp_path, head=True, names="hub", num_labels=5, version=1):
    """A folder written by transformers: save_pretrained (the hub names) or, names="new",
    the same config.json beside a safetensors of transformers 5's module names."""
    config_class, classifier, backbone = hf_classes(version)
    from safetensors.torch import save_file
    cfg = config_class(**(SMALL_V2 if version == 2 else SMALL),
                       id2label=dict(enumerate(LABELS[:num_labels])))
    net = (classifier if head else backbone)(cfg)
    randomise_torch(net)
    folder = tmp_path / f"hf{version}_{names}_{'cls' if head else 'base'}"
    net.save_pretrained(folder)
    if names == "new":
        state = {k: v.contiguous() for k, v in net.state_dict().items()}
        assert any(".attention.q_proj." in k for k in state)
        save_file(state, folder / "model.safetensors")
    written = minswin.load_checkpoint(folder / "model.safetensors")
    assert any(".attention.q_proj." in k for k in written) == (names == "new")
    assert any(".attention.self.query." in k for k in written) == (names == "hub")
    return folder


def use_float64_coords(blocks, model):
    """V2: give the reference minswin's float64 coordinate tables. It builds its own in float32
    (then .double() only widens them), which alone moves float64 logits by ~1e-9; the two
    tables are checked to agree to float32 round-off first."""
    import torch
    ours = [blk.attn.coords for layer in model.layers for blk in layer.blocks]
    assert len(blocks) == len(ours)
    for (table, set_table), coords in zip(blocks, ours):
        assert np.allclose(table.numpy()[0], coords, rtol=0, atol=1e-6)
        set_table(torch.from_numpy(coords[None].copy()))


def hf_forward(folder, x, head=True, version=1, model=None):
    """transformers' output for x (B, H, W, 3), from a fresh load of the folder: transformers
    keeps the window/shift it decided on the first call, so one model per input size.
    model: for V2, the minswin model whose float64 coordinate tables the reference takes."""
    _, classifier, backbone = hf_classes(version)
    import torch
    net = (classifier if head else backbone).from_pretrained(folder).eval()
    if version == 2:
        base = net.swinv2 if head else net
        attns = [blk.attention.self for layer in base.encoder.layers for blk in layer.blocks]
        use_float64_coords([(a.relative_coords_table,
                             lambda t, a=a: setattr(a, "relative_coords_table", t))
                            for a in attns], model)
    net = net.double() if x.dtype == np.float64 else net.float()
    with torch.no_grad():
        out = net(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))
    return (out.logits if head else out.pooler_output).numpy()


def test_transformers_non_square_image_size_equals_transformers(tmp_path, capsys):
    """transformers' image_size may be a pair (64, 128): at the built size transformers, like
    the official model, switches the shift off on the 4x8 stage where min(H, W) = M = 4;
    minswin reads the pair and does the same (float64, equal to round-off)."""
    config_class, classifier, _ = hf_classes(1)
    cfg = config_class(**dict(SMALL, image_size=[64, 128], window_size=4, depths=[2, 2, 2],
                              num_heads=[2, 4, 8]), id2label=dict(enumerate(LABELS)))
    net = classifier(cfg)
    randomise_torch(net)
    folder = tmp_path / "hf_pair"
    net.save_pretrained(folder)
    model = minswin.from_pretrained(folder, dtype="float64")
    assert capsys.readouterr().out.startswith("transformers Swin v1, 64x128, window 4")
    assert model.config.img_size == (64, 128) and model.layers[2].blocks[1].shift_size == 0
    x = images((64, 128))
    assert_close(model.forward(x), hf_forward(folder, x), "float64")


@pytest.mark.parametrize("names", ["hub", "new"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_transformers_classifier_equals_transformers(tmp_path, capsys, names, dtype):
    """Both key generations load strictly and give transformers' logits, float32 and float64,
    at the model's own size and at a padded size (128x160: no stage map divides by 7)."""
    folder = hf_folder(tmp_path, names=names)
    model = minswin.from_pretrained(folder, dtype=dtype)
    assert capsys.readouterr().out.startswith("transformers Swin v1, 112, window 7, 5 classes")
    assert model.labels == LABELS and model.config.num_classes == 5
    assert model.dtype == np.dtype(dtype) and not model.training
    for hw in (OWN, PADDED):
        x = images(hw, dtype=dtype)
        assert_close(model.forward(x), hf_forward(folder, x), dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_transformers_headless_backbone_gives_the_pooled_features(tmp_path, capsys, dtype):
    """SwinModel (no classifier): num_classes=0, forward returns transformers' pooler_output."""
    folder = hf_folder(tmp_path, head=False)
    model = minswin.from_pretrained(folder, dtype=dtype)
    assert "headless, 64 features" in capsys.readouterr().out
    assert model.head is None and model.labels is None
    assert not any(k.startswith("head.") for k in model.params)
    for hw in (OWN, PADDED):
        x = images(hw, dtype=dtype)
        assert_close(model.forward(x), hf_forward(folder, x, head=False), dtype)


@pytest.mark.parametrize("head", [True, False])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_transformers_v2_folder_equals_transformers(tmp_path, capsys, dtype, head):
    """Swinv2ForImageClassification and the headless Swinv2Model, pre-trained windows 5 and 3,
    at the model's own size and at a padded size."""
    folder = hf_folder(tmp_path, head=head, version=2)
    model = minswin.from_pretrained(folder, dtype=dtype)
    what = "5 classes" if head else "headless, 32 features"
    assert capsys.readouterr().out.startswith(f"transformers Swin V2, 112, window 7, {what}")
    assert model.config.version == 2 and model.config.pretrained_window_sizes == (5, 3)
    assert model.labels == (LABELS if head else None)
    for hw in (OWN, PADDED):
        x = images(hw, dtype=dtype)
        assert_close(model.forward(x), hf_forward(folder, x, head, 2, model), dtype)


def test_transformers_v2_names_written_out_by_hand():
    """V2's attention: query/key/value weights -> qkv, the query and value biases (there is
    no key bias) -> q_bias and v_bias, continuous_position_bias_mlp -> cpb_mlp."""
    pre = "swinv2.encoder.layers.1.blocks.0.attention.self."
    state = {f"{pre}{n}.weight": np.full((2, 2), float(i))
             for i, n in enumerate(("query", "key", "value"))}
    state.update({f"{pre}query.bias": np.full(2, 1.0), f"{pre}value.bias": np.full(2, 3.0),
                  f"{pre}logit_scale": np.zeros((2, 1, 1)),
                  f"{pre}continuous_position_bias_mlp.2.weight": np.zeros((2, 512))})
    official = to_official_keys(state)
    blk = "layers.1.blocks.0.attn."
    assert sorted(official) == [blk + k for k in ("cpb_mlp.2.weight", "logit_scale", "q_bias",
                                                  "qkv.weight", "v_bias")]
    np.testing.assert_array_equal(official[blk + "qkv.weight"][:, 0], [0, 0, 1, 1, 2, 2])
    assert official[blk + "q_bias"][0] == 1.0 and official[blk + "v_bias"][0] == 3.0


def test_transformers_names_and_qkv_order_written_out_by_hand():
    """The renames, written out from a real transformers Swin state dict, and the qkv rows in
    the order query, key, value (a swapped order would still have the right shape)."""
    from minswin.checkpoint import transformers_to_official as t
    assert t("swin.encoder.layers.2.blocks.1.layernorm_before.weight") == \
        "layers.2.blocks.1.norm1.weight"
    assert t("encoder.layers.0.blocks.0.attention.output.dense.bias") == \
        "layers.0.blocks.0.attn.proj.bias"
    assert t("swin.encoder.layers.0.blocks.0.output.dense.weight") == \
        "layers.0.blocks.0.mlp.fc2.weight"
    assert t("swin.encoder.layers.0.blocks.0.intermediate.dense.bias") == \
        "layers.0.blocks.0.mlp.fc1.bias"
    assert t("encoder.layers.1.blocks.1.attention.relative_position_bias."
             "relative_position_bias_table") == \
        "layers.1.blocks.1.attn.relative_position_bias_table"
    assert t("swin.encoder.layers.1.blocks.1.attention.self.relative_position_bias_table") == \
        "layers.1.blocks.1.attn.relative_position_bias_table"
    assert t("swin.encoder.layers.0.downsample.reduction.weight") == \
        "layers.0.downsample.reduction.weight"
    assert t("swin.embeddings.patch_embeddings.projection.weight") == "patch_embed.proj.weight"
    assert t("swin.embeddings.norm.bias") == "patch_embed.norm.bias"
    assert t("swin.layernorm.weight") == "norm.weight"
    assert t("classifier.bias") == "head.bias"
    pre = "swin.encoder.layers.0.blocks.0.attention."
    for names in (("self.query", "self.key", "self.value"), ("q_proj", "k_proj", "v_proj")):
        state = {f"{pre}{n}.{p}": np.full((2, 2) if p == "weight" else 2, float(i))
                 for i, n in enumerate(names) for p in ("weight", "bias")}
        assert detect_format(state) == "transformers"
        official = to_official_keys(state)
        assert sorted(official) == ["layers.0.blocks.0.attn.qkv.bias",
                                    "layers.0.blocks.0.attn.qkv.weight"]
        np.testing.assert_array_equal(official["layers.0.blocks.0.attn.qkv.weight"][:, 0],
                                      [0, 0, 1, 1, 2, 2])            # rows: q, k, v
        np.testing.assert_array_equal(official["layers.0.blocks.0.attn.qkv.bias"],
                                      [0, 0, 1, 1, 2, 2])
    partial = to_official_keys({f"{pre}q_proj.weight": np.zeros((2, 2))})
    assert list(partial) == ["layers.0.blocks.0.attn.q.weight"]     # left for the report


def test_transformers_hub_index_buffers_are_checked_and_dropped(tmp_path):
    """Files on the hub (transformers 4) hold `attention.self.relative_position_index` (N, N);
    they are compared with minswin's, dropped, and under strict=False raise nothing."""
    folder = hf_folder(tmp_path)
    state = minswin.load_checkpoint(folder / "model.safetensors")
    model = minswin.from_pretrained(folder, dtype="float64", verbose=False)
    index = minswin.relative_position_index(7)
    for i, depth in enumerate(SMALL["depths"]):
        for j in range(depth):
            state[f"swin.encoder.layers.{i}.blocks.{j}.attention.self.relative_position_index"] \
                = index
    for strict in (True, False):
        report = model.load_state_dict(state, strict=strict)
        assert len(report["buffers"]) == 6 and report["unexpected"] == []
        assert report["missing"] == [] and report["format"] == "transformers"
    state["swin.encoder.layers.2.blocks.1.attention.self.relative_position_index"] = index.T
    with pytest.raises(ValueError, match=r"buffer 'layers.2.blocks.1.attn.relative_position_"
                                         r"index' \(49, 49\) differs"):
        model.load_state_dict(state, strict=False)


@pytest.mark.parametrize("what, edit, match", [
    ("absolute position embeddings", {"use_absolute_embeddings": True},
     r"use_absolute_embeddings is True; minswin's Swin supports only False"),
    ("an image size of three numbers", {"image_size": [224, 192, 3]},
     r"image_size: expected an int or a pair"),
    ("SimMIM", {"architectures": ["SwinForMaskedImageModeling"]},
     r"not SwinForMaskedImageModeling"),
    ("V2 absolute position embeddings", {"model_type": "swinv2",
                                         "use_absolute_embeddings": True},
     r"use_absolute_embeddings is True"),
    ("another model", {"model_type": "vit"}, r"expected a Swin config .*got 'vit'"),
])
def test_transformers_configs_minswin_cannot_follow_are_refused(tmp_path, what, edit, match):
    folder = tmp_path / "f"
    folder.mkdir()
    cfg = {"model_type": "swin", **SMALL, "id2label": {"0": "a"}, **edit}
    (folder / "config.json").write_text(json.dumps(cfg))
    minswin.save_checkpoint(folder / "model.safetensors",
                            {"classifier.weight": np.zeros((1, 64))})
    with pytest.raises(ValueError, match=match):
        minswin.from_pretrained(folder)


# ---------------------------------------------------------------------------- timm

def timm_folder(tmp_path, num_classes=5):
    """A folder written the way timm writes one (save_for_hf: config.json with architecture,
    model_args and pretrained_cfg, beside model.safetensors), and the timm model itself."""
    timm = oracle("timm")
    from timm.models import save_for_hf
    net = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False,
                            num_classes=num_classes, embed_dim=16, depths=(2, 2, 2),
                            num_heads=(2, 2, 4), img_size=112)
    randomise_torch(net)
    folder = tmp_path / f"timm_{num_classes}"
    save_for_hf(net.eval(), folder, safe_serialization=True)
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["architecture"] == "swin_tiny_patch4_window7_224" and "model_args" in cfg
    return folder, net


@pytest.mark.parametrize("num_classes", [5, 0])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_timm_folder_equals_timm(tmp_path, capsys, dtype, num_classes):
    """Logits (or, num_classes=0, the pooled features timm returns) at the model's own size.
    timm rolls before padding (SPEC 13), so other sizes are compared with transformers."""
    import torch
    folder, net = timm_folder(tmp_path, num_classes)
    model = minswin.from_pretrained(folder, dtype=dtype)
    head = f"{num_classes} classes" if num_classes else "headless, 64 features"
    assert capsys.readouterr().out.startswith(f"timm Swin v1, 112, window 7, {head}")
    x = images(OWN, dtype=dtype)
    net = net.double() if dtype == "float64" else net.float()
    with torch.no_grad():
        ref = net(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()
    assert ref.shape == (2, num_classes or 64)
    assert_close(model.forward(x), ref, dtype)


@pytest.mark.parametrize("num_classes", [5, 0])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_timm_v2_folder_equals_timm(tmp_path, capsys, dtype, num_classes):
    """timm's swinv2 (window 8, pre-trained windows 4 and 2), at the model's own size."""
    timm = oracle("timm")
    import torch
    from timm.models import save_for_hf
    net = timm.create_model("swinv2_tiny_window8_256", pretrained=False, img_size=64,
                            num_classes=num_classes, embed_dim=16, depths=(2, 2),
                            num_heads=(2, 4), pretrained_window_sizes=(4, 2))
    randomise_torch(net)
    folder = tmp_path / "timm_v2"
    save_for_hf(net.eval(), folder, safe_serialization=True)
    model = minswin.from_pretrained(folder, dtype=dtype)
    head = f"{num_classes} classes" if num_classes else "headless, 32 features"
    assert capsys.readouterr().out.startswith(f"timm Swin V2, 64, window 8, {head}")
    assert model.config.pretrained_window_sizes == (4, 2)
    x = images((64, 64), dtype=dtype)
    net = net.double() if dtype == "float64" else net.float()
    attns = [blk.attn for layer in net.layers for blk in layer.blocks]
    use_float64_coords([(a.relative_coords_table,
                         lambda t, a=a: setattr(a, "relative_coords_table", t.to(a.logit_scale)))
                        for a in attns], model)
    with torch.no_grad():
        ref = net(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()
    assert_close(model.forward(x), ref, dtype)


def test_timm_hub_config_without_model_args_uses_the_architecture():
    """The hub's timm folders name only the architecture: the widths come from its name."""
    from minswin.folders import recognise
    for arch, size, window, name in (("swin_tiny_patch4_window7_224", 224, 7, "swin_t"),
                                     ("swin_base_patch4_window12_384.ms_in22k", 384, 12,
                                      "swin_b_384"),
                                     ("swinv2_tiny_window8_256", 256, 8, "swinv2_t"),
                                     ("swinv2_base_window16_256", 256, 16, "swinv2_b_w16")):
        cfg = {"architecture": arch, "num_classes": 3,
               "pretrained_cfg": {"input_size": [3, size, size], "label_names": ["a", "b", "c"]}}
        fmt = recognise(cfg)
        config, labels = fmt.read(cfg, {})
        assert fmt.name.startswith("timm Swin") and fmt.keys == "timm"
        assert labels == ["a", "b", "c"]
        want = minswin.get_config(name, num_classes=3)
        assert config == type(want)(**{**want.as_dict(), "drop_path_rate": 0.2})
        assert (config.img_size, config.window_size) == (size, window)
    cfg = {"architecture": "swinv2_base_window12to16_192to256", "num_classes": 1000}
    config, _ = recognise(cfg).read(cfg, {})
    assert (config.img_size, config.window_size, config.embed_dim) == (256, 16, 128)
    assert config.pretrained_window_sizes == (12, 12, 12, 6)        # timm's own definition


@pytest.mark.parametrize("arch, match", [
    ("swin_s3_tiny_224", r"not a timm Swin name minswin knows"),
    ("swinv2_cr_tiny_224", r"swinv2_cr_\* are other architectures"),
])
def test_timm_architectures_minswin_does_not_have_are_refused(tmp_path, arch, match):
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architecture": arch, "num_classes": 3}))
    minswin.save_checkpoint(folder / "model.safetensors", {"head.fc.weight": np.zeros((3, 8))})
    with pytest.raises(ValueError, match=match):
        minswin.from_pretrained(folder)


# ---------------------------------------------------------------------------- minswin's own

def micro(num_classes=3, seed=1):
    return minswin.create_model("swin_micro", embed_dim=12, num_classes=num_classes, seed=seed,
                                dtype="float64").eval()


@pytest.mark.parametrize("name", ["swin_micro", "swinv2_digits"])
@pytest.mark.parametrize("num_classes", [3, 0])
def test_minswin_folder_and_file_round_trip(tmp_path, capsys, num_classes, name):
    a = minswin.create_model(name, embed_dim=12, num_classes=num_classes, seed=1,
                             dtype="float64").eval()
    labels = ["x", "y", "z"] if num_classes else None
    minswin.save_pretrained(a, tmp_path / "m", labels=labels)
    S = a.config.img_size
    x = images((S, S))
    for path in (tmp_path / "m", tmp_path / "m" / "model.safetensors"):
        b = minswin.from_pretrained(path, dtype="float64")
        assert b.config == a.config and type(b) is type(a) and b.labels == labels
        np.testing.assert_array_equal(b.forward(x), a.forward(x))
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"minswin, {S}, window 4, ")
    assert out[1].startswith(f"minswin file, {S}, window 4, ")


def test_a_bare_weights_file_says_what_is_missing(tmp_path):
    minswin.save_checkpoint(tmp_path / "w.safetensors", micro().state_dict())
    with pytest.raises(ValueError, match=r"holds weights but no config .*create_model"):
        minswin.from_pretrained(tmp_path / "w.safetensors")


def test_folders_without_what_is_needed_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"reads local files only"):
        minswin.from_pretrained(tmp_path / "microsoft/swin-tiny-patch4-window7-224")
    with pytest.raises(FileNotFoundError, match=r"has no config.json"):
        minswin.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "swin", **SMALL}))
    with pytest.raises(FileNotFoundError, match=r"no model.safetensors"):
        minswin.from_pretrained(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not opened")
    with pytest.raises(ValueError, match=r"only PyTorch pickles \(pytorch_model.bin\).*"
                                         r"convert_torch_checkpoint.py"):
        minswin.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config.json' is not valid JSON"):
        minswin.from_pretrained(tmp_path)


# ---------------------------------------------------------------------------- headless model

def test_headless_model_returns_the_features_its_head_would_read(rng):
    """num_classes=0: no head parameters; forward gives the pooled (B, 8C) features, which the
    same model with a head maps to its logits; backward takes their gradient."""
    with_head, headless = micro(3, seed=4), micro(0, seed=4)
    for k, v in headless.params.items():
        v[...] = with_head.params[k]
    assert set(with_head.params) - set(headless.params) == {"head.weight", "head.bias"}
    x = rng.standard_normal((2, 32, 32, 3))
    features = headless.forward(x)
    assert features.shape == (2, 24)
    _, trace = headless.trace(x)
    assert [name for name, _ in trace[-2:]] == ["norm", "avgpool"] and trace[-1][1] == (2, 24)
    w, b = with_head.params["head.weight"], with_head.params["head.bias"]
    np.testing.assert_allclose(features @ w.T + b, with_head.forward(x), rtol=1e-12)
    report = check_module(headless, rng.standard_normal((2, 32, 32, 3)), tol=TOL_MODEL)
    assert report.passed, str(report)
    assert headless.flops() == with_head.flops() - 24 * 3


def test_num_classes_must_not_be_negative():
    with pytest.raises(ValueError, match=r"num_classes: expected a non-negative integer "
                                         r"\(0: no head"):
        minswin.create_model("swin_micro", num_classes=-1)


# ---------------------------------------------------------------------------- strict=False

def test_non_strict_load_that_matches_nothing_is_refused():
    """Before: a transformers state dict loaded with strict=False returned quietly having
    loaded nothing. Now nothing-matched is an error, and the model is unchanged."""
    model = micro()
    before = {k: v.copy() for k, v in model.params.items()}
    state = {f"backbone.{k}": v for k, v in micro(seed=2).state_dict().items()}
    with pytest.raises(ValueError, match=rf"none of its {len(state)} tensor\(s\) matches a "
                                         r"parameter of the model .*the model is unchanged"):
        model.load_state_dict(state, strict=False)
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, before[k])


def test_non_strict_load_reports_what_it_loaded_missed_and_left():
    model = micro()
    state = dict(micro(seed=2).state_dict())
    state.pop("head.bias")
    state["decoder.weight"] = np.zeros(3)
    report = model.load_state_dict(state, strict=False)
    assert report["missing"] == ["head.bias"] and report["unexpected"] == ["decoder.weight"]
    assert len(report["loaded"]) == len(model.params) - 1 and report["format"] == "official"
    assert str(report).splitlines() == [
        f"loaded {len(model.params) - 1} parameter tensor(s) (official names); 0 buffer(s) "
        "checked and dropped", "missing: 1: head.bias", "unexpected: 1: decoder.weight"]
    np.testing.assert_array_equal(model.params["head.weight"], state["head.weight"])


def test_non_strict_buffer_of_a_block_the_model_lacks_is_unexpected_not_an_error():
    model = micro()
    state = dict(micro(seed=2).state_dict())
    state["layers.5.blocks.0.attn.relative_position_index"] = minswin.relative_position_index(4)
    report = model.load_state_dict(state, strict=False)
    assert report["unexpected"] == ["layers.5.blocks.0.attn.relative_position_index"]
    with pytest.raises(ValueError, match=r"unexpected key 'layers.5.blocks.0.attn.relative"):
        model.load_state_dict(state, strict=True)


# ---------------------------------------------------------------------------- .bin converter

def test_transformers_bin_converts_like_a_pth_and_the_folder_then_loads(tmp_path, capsys):
    """A transformers 4 `pytorch_model.bin` is torch.save(state_dict): the converter reads it
    with weights_only=True, and the folder then loads with the same logits as the original."""
    import importlib.util
    from pathlib import Path
    torch = pytest.importorskip("torch", reason="the converter needs torch")
    folder = hf_folder(tmp_path)
    state = minswin.load_checkpoint(folder / "model.safetensors")
    x = images(OWN)
    want = minswin.from_pretrained(folder, dtype="float64", verbose=False).forward(x)
    (folder / "model.safetensors").unlink()
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"only PyTorch pickles"):
        minswin.from_pretrained(folder)
    path = Path(__file__).resolve().parents[1] / "scripts" / "convert_torch_checkpoint.py"
    spec = importlib.util.spec_from_file_location("convert_torch_checkpoint", path)
    convert = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(convert)
    convert.main(str(folder / "pytorch_model.bin"), str(folder / "model.safetensors"))
    assert f"wrote {len(state)} tensors" in capsys.readouterr().out
    got = minswin.from_pretrained(folder, dtype="float64", verbose=False).forward(x)
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------- sizes (tutorial 8)

def test_where_transformers_parts_from_minswin_and_why(tmp_path):
    """Tutorial 8's facts, on the 3-stage test model. At 100x132 stage 3's map is 7x9:
    transformers takes window 7 and no shift (min side <= M, decided on the unpadded map);
    minswin pads to 7x14 and shifts by 3 along the width (torchvision). With transformers'
    decision in stage 3 they agree again. transformers keeps the decision for later calls,
    and fails on a map smaller than M (48x64: stage 2 is 6x8)."""
    from minswin.ops.masks import forward_window_shift
    folder = hf_folder(tmp_path)
    model = minswin.from_pretrained(folder, dtype="float64", verbose=False)
    x = images((100, 132))
    transformers = oracle("transformers")
    import torch
    net = transformers.SwinForImageClassification.from_pretrained(folder).eval().double()
    with torch.no_grad():
        ref = net(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).logits.numpy()
    kept = net.swin.encoder.layers[2].blocks[1]
    assert (kept.window_size, kept.shift_size) == (7, 0)
    assert model.layers[2].blocks[1].window_shift_for(7, 9) == ((7, 14), (0, 3))
    assert np.abs(model.forward(x) - ref).max() > 1e-3
    for blk in model.layers[2].blocks:
        blk.window_shift_for = lambda H, W: forward_window_shift(H, W, 7, 0)
    assert_close(model.forward(x), ref, "float64")
    x = images(PADDED)
    with torch.no_grad():
        stale = net(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).logits
    assert np.abs(stale.numpy() - hf_forward(folder, x)).max() > 1e-3
    with pytest.raises(RuntimeError, match=r"size of tensor a \(\d+\) must match the size of "
                                           r"tensor b \(49\)"):     # a 6x8 or 3x4 window
        hf_forward(folder, images((48, 64)))


@pytest.mark.parametrize("args, message", [
    ([], r"^usage: python scripts/convert_torch_checkpoint.py IN.pth\|IN.bin OUT.safetensors$"),
    (["missing.bin", "m.safetensors"], r"src: cannot read 'missing.bin' \(No such file"),
    (["junk.bin", "m.safetensors"], r"src: 'junk.bin' is not a PyTorch checkpoint"),
    (["cut.bin", "m.safetensors"], r"src: 'cut.bin' is not a readable PyTorch checkpoint"),
    (["ok.bin", "no/such/m.safetensors"], r"dst: the folder .* does not exist"),
])
def test_converter_says_what_is_wrong_in_one_line(tmp_path, args, message):
    """Wrong input: one line on stderr, exit 2, no traceback, nothing written."""
    import subprocess
    from pathlib import Path
    torch = pytest.importorskip("torch", reason="the converter needs torch")
    torch.save({"w": torch.zeros(2)}, tmp_path / "ok.bin")
    (tmp_path / "junk.bin").write_bytes(b"garbage, not a pickle")
    (tmp_path / "cut.bin").write_bytes((tmp_path / "ok.bin").read_bytes()[:300])
    script = Path(__file__).resolve().parents[1] / "scripts" / "convert_torch_checkpoint.py"
    proc = subprocess.run([sys.executable, str(script), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), proc.stderr
    assert not list(tmp_path.rglob("*.safetensors"))
