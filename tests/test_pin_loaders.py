"""Every config field a folder loader reads, with a value that is NOT its default, v1 and V2.

The folders of test_folders.py all use window 7, patch 4, mlp ratio 4 and sorted labels, so a
loader that read one of those under a wrong key (and fell back on the default) would pass
them. Here one config changes every field at once: image 48, patch 2, embed dim 12, depths
(1, 3), heads (3, 6), window 8 (V2: pretrained windows 6 and 4), mlp ratio 2, drop path 0.3,
and labels whose ids are not in text order. Each folder is written by the library itself
(transformers' save_pretrained, timm's save_for_hf, minswin.save_pretrained); the loaded
model's config and labels must be those, and its logits the library's own (float64).
"""
import json

import numpy as np
import pytest
from test_folders import (
    assert_close,
    hf_classes,
    hf_forward,
    images,
    oracle,
    randomise_torch,
    use_float64_coords,
)

import minswin
from minswin.configs import SwinConfig, SwinV2Config

LABELS = {0: "zebra", 1: "ant", 2: "yak", 3: "bee", 4: "cat", 5: "dog", 6: "eel", 7: "fox",
          8: "gnu", 9: "hen", 10: "ibis"}                 # ids 10 after 9: sorted as numbers
ODD = dict(image_size=48, patch_size=2, embed_dim=12, depths=[1, 3], num_heads=[3, 6],
           window_size=8, mlp_ratio=2.0, drop_path_rate=0.3)
ODD_V2 = dict(ODD, pretrained_window_sizes=[6, 4])


def test_the_odd_config_differs_from_every_default():
    for cls, odd in ((SwinConfig, ODD), (SwinV2Config, ODD_V2)):
        default = cls()
        for k, v in odd.items():
            ours = {"image_size": "img_size"}.get(k, k)
            assert getattr(default, ours) != (tuple(v) if isinstance(v, list) else v), k


def _expect(model, odd, version):
    c = model.config
    assert c.version == version
    assert (c.img_size, c.patch_size, c.embed_dim, c.depths, c.num_heads, c.window_size,
            c.mlp_ratio) == (odd["image_size"], odd["patch_size"], odd["embed_dim"],
                             tuple(odd["depths"]), tuple(odd["num_heads"]), odd["window_size"],
                             odd["mlp_ratio"])
    if version == 2:
        assert c.pretrained_window_sizes == tuple(odd["pretrained_window_sizes"])
    # the built model, not only its config: the window of its blocks and its patch size
    assert [blk.window_size for blk in model.layers[0].blocks] == [8]
    assert model.params["patch_embed.proj.weight"].shape == (12, 3, 2, 2)


@pytest.mark.parametrize("version", [1, 2])
def test_transformers_folder_with_every_field_changed(tmp_path, capsys, version):
    config_class, classifier, _ = hf_classes(version)
    odd = ODD_V2 if version == 2 else ODD
    net = classifier(config_class(**odd, id2label=LABELS))
    randomise_torch(net)
    net.save_pretrained(tmp_path / "hf")
    model = minswin.from_pretrained(tmp_path / "hf", dtype="float64")
    _expect(model, odd, version)
    assert model.labels == [LABELS[i] for i in range(len(LABELS))]
    assert capsys.readouterr().out.startswith(
        f"transformers Swin {'V2' if version == 2 else 'v1'}, 48, window 8, 11 classes")
    x = images((48, 48))
    assert_close(model.forward(x), hf_forward(tmp_path / "hf", x, True, version, model),
                 "float64")


@pytest.mark.parametrize("version", [1, 2])
def test_timm_folder_with_every_field_changed(tmp_path, version):
    timm = oracle("timm")
    import torch
    from timm.models import save_for_hf
    arch = "swinv2_tiny_window8_256" if version == 2 else "swin_tiny_patch4_window7_224"
    kw = dict(img_size=48, patch_size=2, embed_dim=12, depths=(1, 3), num_heads=(3, 6),
              window_size=8, mlp_ratio=2.0, drop_path_rate=0.3, num_classes=4)
    if version == 2:
        kw["pretrained_window_sizes"] = (6, 4)
    net = timm.create_model(arch, pretrained=False, **kw)
    randomise_torch(net)
    save_for_hf(net.eval(), tmp_path / "timm", safe_serialization=True)
    cfg = json.loads((tmp_path / "timm" / "config.json").read_text())
    cfg["pretrained_cfg"]["label_names"] = ["w", "x", "y", "z"]
    (tmp_path / "timm" / "config.json").write_text(json.dumps(cfg))
    model = minswin.from_pretrained(tmp_path / "timm", dtype="float64", verbose=False)
    _expect(model, ODD_V2 if version == 2 else ODD, version)
    assert model.labels == ["w", "x", "y", "z"]
    x = images((48, 48))
    net = net.double()
    if version == 2:
        attns = [blk.attn for layer in net.layers for blk in layer.blocks]
        use_float64_coords([(a.relative_coords_table,
                             lambda t, a=a: setattr(a, "relative_coords_table",
                                                    t.to(a.logit_scale)))
                            for a in attns], model)
    with torch.no_grad():
        ref = net(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()
    assert_close(model.forward(x), ref, "float64")


@pytest.mark.parametrize("version", [1, 2])
def test_minswin_folder_with_every_field_changed(tmp_path, version):
    name = "swinv2_digits" if version == 2 else "swin_micro"
    odd = ODD_V2 if version == 2 else ODD
    over = dict(img_size=48, patch_size=2, embed_dim=12, depths=(1, 3), num_heads=(3, 6),
                window_size=8, mlp_ratio=2.0, drop_path_rate=0.3)
    if version == 2:
        over["pretrained_window_sizes"] = (6, 4)
    a = minswin.create_model(name, num_classes=3, seed=2, dtype="float64", **over).eval()
    minswin.save_pretrained(a, tmp_path / "m", labels=["c", "a", "b"])
    b = minswin.from_pretrained(tmp_path / "m", dtype="float64", verbose=False)
    _expect(b, odd, version)
    assert b.config == a.config and b.labels == ["c", "a", "b"]
    x = images((48, 48))
    np.testing.assert_array_equal(b.forward(x), a.forward(x))
