"""The dense task: the upsampling op, the heads, the segmenter's backward, the canvases, IoU,
and a short training run (`minswin train --task segment`'s loop) that lowers the loss."""
import os

import numpy as np
import pytest
from conftest import check_op_case

from minswin.ops.upsample import upsample_backward, upsample_forward, upsample_slow
from minswin.segment import create_segmenter, make_canvases
from minswin.segment.metrics import confusion, iou_per_class, mean_iou


@pytest.mark.parametrize("factor, size", [(2, None), (3, (8, 11)), (4, (10, 14))])
def test_upsample_equals_the_definition_and_passes_the_gradient_check(factor, size):
    def make(rng):
        return upsample_forward, upsample_backward, dict(x=rng.standard_normal((2, 3, 4, 5))), \
            dict(factor=factor, size=size)
    check_op_case(make, np, f"upsample x{factor} -> {size}")
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    out, _ = upsample_forward(x, factor, size)
    assert np.array_equal(out, upsample_slow(x, factor, size))


def test_upsample_refuses_a_size_it_cannot_cover():
    x = np.zeros((1, 3, 4, 2))
    with pytest.raises(ValueError, match="size"):
        upsample_forward(x, 2, size=(7, 9))
    with pytest.raises(ValueError, match="size"):
        upsample_forward(x, 2, size=(4, 8))                   # 4 < 3*2 - 2 + 1


def tiny_segmenter(head, seed=0):
    model = create_segmenter("swin_canvas", head=head, dim=4, seed=seed, dtype="float64",
                             backbone_init="", img_size=8, embed_dim=6, num_heads=(1, 2, 2),
                             drop_path_rate=0.0)
    model.eval()
    rng = np.random.default_rng(seed)
    for p in model.params.values():                          # every term counts
        p[...] = rng.standard_normal(p.shape) * (0.5 if p.ndim == 1 else
                                                  1 / np.sqrt(np.prod(p.shape[1:])))
    return model


@pytest.mark.parametrize("head", ["fpn", "last"])
def test_segmenter_backward_gradient_check(head):
    """The whole segmenter in float64, directional central differences (gradcheck.check_module:
    one random direction for dx and for every parameter, backbone and head): the pyramid's
    gradients arrive at every stage at once."""
    from minswin.gradcheck import TOL_MODEL, check_module
    model = tiny_segmenter(head)
    x = np.random.default_rng(1).standard_normal((1, 8, 8, 3))
    assert model.forward(x).shape == (1, 8, 8, 11)
    report = check_module(model, x, title=f"segmenter, {head} head")
    assert report.passed, str(report)
    assert report.max_rel_error < TOL_MODEL
    assert len(report.rows) == 1 + len(model.params)


def test_canvases_label_each_stroke_with_its_digit():
    digits = np.zeros((2, 8, 8))
    digits[0, 2:6, 3:5] = 1.0                                 # a "1"-ish bar
    digits[1, 1:7, 1:7] = 1.0                                 # a block "8"
    img, lab = make_canvases(digits, np.array([1, 8]), 20, size=32, digit=16, seed=0)
    assert img.shape == (20, 32, 32) and lab.shape == (20, 32, 32)
    assert set(np.unique(lab)) <= {0, 2, 9}                   # 1 + digit
    assert np.all((lab > 0) == (img > 0.3))                   # strokes are the bright pixels
    assert all(1 <= len(np.unique(lab[i])) <= 3 for i in range(20))


def test_iou_from_the_confusion_matrix():
    true = np.array([[0, 0, 1, 1], [2, 2, 0, 0]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 0, 0]])
    cm = confusion(pred, true, 4)
    iou = iou_per_class(cm)
    # class 0: tp 3, pred 4, true 4 -> 3/5; class 1: 2/3; class 2: 1/2; class 3 absent: NaN
    assert np.allclose(iou[:3], [3 / 5, 2 / 3, 1 / 2]) and np.isnan(iou[3])
    assert mean_iou(cm) == pytest.approx((3 / 5 + 2 / 3 + 1 / 2) / 3)


def test_a_few_steps_of_the_dense_task_reduce_the_loss(tmp_path):
    from minswin.segment.train import train_segmenter
    r = train_segmenter("canvas_tiny", out=str(tmp_path / "run"), epochs=3, progress=False,
                        plots=False, log=lambda *a: None, n_train=16, batch_size=8, n_val=4,
                        n_test=4)
    losses = [e["train_loss"] for e in r["history"]["epochs"]]
    assert losses[-1] < 0.9 * losses[0], losses
    assert (tmp_path / "run" / "last.safetensors").exists()


def test_cli_segment_run_stops_resumes_and_refuses(tmp_path, capsys):
    """`minswin train --task segment`: stop after an epoch, resume to the end (curves and
    history written), and the refusals: a folder that holds a run, a changed field on resume,
    a classification flag, a classification resume of a segmentation checkpoint."""
    from minswin.cli import main as cli_main
    out = str(tmp_path / "seg")
    common = ["--no-progress", "--batch-size", "8"]
    assert cli_main(["train", "--task", "segment", "--config", "canvas_tiny", "--epochs", "2",
                     "--stop-after", "1", "--out", out, *common]) == 0
    assert "continue with: minswin train --task segment --resume" in capsys.readouterr().out
    last = str(tmp_path / "seg" / "last.safetensors")
    assert cli_main(["train", "--task", "segment", "--config", "canvas_tiny", "--out", out,
                     *common]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert cli_main(["train", "--task", "segment", "--resume", last, "--head", "last"]) == 2
    assert "head: cannot change when resuming" in capsys.readouterr().err
    assert cli_main(["train", "--resume", last]) == 2
    assert "--task segment" in capsys.readouterr().err
    assert cli_main(["train", "--task", "segment", "--img-size", "8", "--out", out]) == 2
    assert capsys.readouterr().err.startswith("minswin train: error: --img-size:")
    assert cli_main(["train", "--task", "segment", "--resume", last, "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "resumed from" in text and "test mean IoU:" in text
    assert (tmp_path / "seg" / "curves.png").exists()


@pytest.mark.parametrize("name", ["swin_canvas_fpn", "swin_canvas_last"])
def test_shipped_segmenters_load_and_say_what_they_are(name):
    from minswin.segment.pretrained import pretrained_segmenter, segmenter_info
    info = segmenter_info(name)
    model, meta = pretrained_segmenter(name)
    assert info["name"] == name and meta["task"] == "segment"
    assert model.head_kind == ("fpn" if name.endswith("fpn") else "last")
    assert info["test_canvases"] == 300 and len(info["test_iou"]) == 11
    assert info["command"].startswith("minswin train --task segment")
    x = np.zeros((1, 32, 32, 3), np.float32)
    assert model.forward(x).shape == (1, 32, 32, 11)


@pytest.mark.slow
def test_shipped_segmenters_give_their_recorded_iou():
    """The README's and tutorial 12's numbers: each shipped file, evaluated again on the 300
    held-out canvases, gives the mean and per-class IoU in its metadata."""
    from minswin.segment.pretrained import pretrained_segmenter, segmenter_info
    from minswin.segment.train import evaluate_segmenter, make_segment_config, segment_data
    test = segment_data(make_segment_config("canvas", n_train=8, batch_size=8)).test
    for name in ("swin_canvas_fpn", "swin_canvas_last"):
        model, _ = pretrained_segmenter(name)
        _, cm, _ = evaluate_segmenter(model, test)
        info = segmenter_info(name)
        assert np.nanmean(iou_per_class(cm)) == pytest.approx(info["test_miou"], abs=1e-12)
        assert np.allclose(iou_per_class(cm), np.array(info["test_iou"], float), atol=1e-12,
                           equal_nan=True)


def test_upsample_exercise_right_and_wrong_answers():
    """An independent right answer (a loop over blocks) passes; the typical wrong ones fail
    with their hints (the catalogue's own mistakes are run by tests/test_exercises.py)."""
    from minswin.exercises import grade

    def loop(dout, cache):
        B, h, w, C = cache.in_shape
        f = cache.factor
        dx = np.zeros((B, h, w, C))
        for r in range(dout.shape[1]):
            for c in range(dout.shape[2]):
                dx[:, r // f, c // f] += dout[:, r, c]
        return dx

    def no_uncrop(dout, cache):
        B, h, w, C = cache.in_shape
        f = cache.factor
        return dout.reshape(B, h, f, w, f, C).sum(axis=(2, 4))

    assert grade("upsample_backward", loop, out=False).passed
    r = grade("upsample_backward", no_uncrop, out=False)
    assert r.status != "passed" and "upsample_backward" in r.text


def test_a_segment_run_owns_its_folder(tmp_path, capsys):
    """As classification's: a folder another run holds is refused before anything is written,
    and a refused run leaves no folder behind."""
    from minswin.atomic import owned_folder
    from minswin.cli import main as cli_main
    out = tmp_path / "busy"
    args = ["train", "--task", "segment", "--config", "canvas_tiny", "--epochs", "1",
            "--no-progress", "--batch-size", "8", "--out", str(out)]
    with owned_folder(str(out)):                       # as a running `minswin train` holds it
        assert cli_main(args) == 2
        assert "in use by another minswin run" in capsys.readouterr().err
        assert os.listdir(out) == [] or all(n.startswith(".") for n in os.listdir(out))
    assert not out.exists()
    assert cli_main([*args[:-1], str(tmp_path / "refused"), "--lr", "-1"]) == 2
    assert not (tmp_path / "refused").exists()


def test_every_shipped_file_is_a_name_and_a_segmenter_says_where_it_loads(capsys):
    """Each .safetensors in minswin/weights is named by the classifiers' or the segmenters'
    table; a segmenter's name given where a classifier is expected says how to load it."""
    import glob

    import minswin
    from minswin.cli import main as cli_main
    from minswin.weights import PRETRAINED, SEGMENTERS, WEIGHTS_DIR
    files = {os.path.basename(p) for p in glob.glob(os.path.join(WEIGHTS_DIR, "*.safetensors"))}
    assert files == set(PRETRAINED.values()) | set(SEGMENTERS.values())
    for name in SEGMENTERS:
        with pytest.raises(ValueError, match=rf"'{name}' is a shipped segmenter.*"
                                             rf"pretrained_segmenter\('{name}'\)"):
            minswin.pretrained(name)
        assert cli_main(["evaluate", name]) == 2
        assert "is a shipped segmenter" in capsys.readouterr().err
