"""The README's teaching numbers come from the code: each is recomputed here.

The "A taste" block is run line by line and every `# value` comment compared with what the
line gives; the numbers of the sections on Swin V2 and on moving weights to another window are
recomputed from minswin (configs, flops, the shipped models' records, the files' sizes). A
number changed in the code and not in the README, or the other way round, fails here.
"""
import ast
import functools
import os
import re

import numpy as np
import pytest

import minswin
from minswin.flops import model_flops
from minswin.weights import pretrained_info, pretrained_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()


def _section(title):
    """The text of the README section whose heading is `title`, up to the next heading."""
    m = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ )", README, re.S | re.M)
    assert m, f"README: no section {title!r}"
    return m.group(1)


def _taste():
    """(code, comment) of each commented line of the README's "A taste" block."""
    block = re.search(r"A taste:\n\n```python\n(.*?)```", README, re.S)
    assert block, "README: the 'A taste' block is gone"
    lines = []
    for line in block.group(1).splitlines():
        code, sep, comment = line.partition("#")
        if sep and code.strip():
            lines.append((code.strip(), comment.strip()))
    return block.group(1), lines


@functools.lru_cache(maxsize=1)
def _taste_run():
    """Run the block once (Swin-T forward and backward at 224: several seconds)."""
    source, _ = _taste()
    env = {}
    exec(compile(source, "README.md (A taste)", "exec"), env)   # our own README
    return env


def _check_taste(lines, env):
    seen = 0
    for code, comment in lines:
        if "=" in code and "==" not in code:                  # an assignment: check its target
            got = env[code.split("=", 1)[0].strip()]
        else:
            got = eval(code, env)                                # our own README
        if comment.startswith("[["):                          # a literal array
            assert np.array_equal(got, ast.literal_eval(comment)), (code, comment)
        elif re.fullmatch(r"\d+", comment):
            assert got == int(comment), (code, comment, got)
        elif re.fullmatch(r"\d+\.\d+.*", comment):            # 4.494 (multiply-adds, ...)
            number = comment.split()[0]
            assert f"{got:.{len(number.split('.')[1])}f}" == number, (code, comment, got)
        elif comment.startswith("("):                         # a shape, then words
            shape = ast.literal_eval(re.match(r"\([\d, ]+\)", comment).group(0))
            assert tuple(got.shape if hasattr(got, "shape") else got) == shape, (code, got)
        elif "parameters" in comment:
            assert f"{got.num_params():,} parameters" == comment, (code, comment)
        else:
            continue
        seen += 1
    return seen


@pytest.mark.slow
def test_the_taste_block_prints_what_its_comments_say():
    _, lines = _taste()
    env = _taste_run()
    assert _check_taste(lines, env) >= 7, lines
    assert set(np.unique(env["minswin"].attention_mask(56, 56, 7, 3))) == {0.0, -100.0}
    # the check itself: one wrong comment is caught
    for right, wrong in (("15091034112", "15091034113"), ("4.494", "4.495"),
                         ("28,288,354", "28,288,355"), ("[[0,0,1,2]", "[[0,0,1,3]")):
        bad = [(c, m.replace(right, wrong)) for c, m in lines]
        assert bad != lines, right
        with pytest.raises(AssertionError):
            _check_taste(bad, env)


def test_the_swin_v2_numbers_are_the_code_s():
    text = _section("Swin V2")
    n = minswin.create_model("swinv2_t").num_params()
    assert f"Swin V2-T {n:,}" in text
    g8 = " / ".join(f"{model_flops(minswin.get_config(f'swinv2_{v}')) / 1e9:.1f}"
                    for v in "tsb")
    g16 = " / ".join(f"{model_flops(minswin.get_config(f'swinv2_{v}_w16')) / 1e9:.1f}"
                     for v in "tsb")
    assert f"({g8} G at window 8, {g16} G at window 16)" in text, (g8, g16)
    acc = pretrained_info("swinv2_digits")["test_accuracy"]
    assert f"recipe with V2 blocks, {100 * acc:.1f}% on the test split" in text


def test_the_shipped_models_numbers_are_their_records():
    pictures = _section("Pictures")
    for name in ("swin_digits", "swinv2_digits"):
        mb = os.path.getsize(pretrained_path(name)) / 1e6
        assert f"{mb:.1f} MB" in pictures, (name, mb)
    acc = pretrained_info("swinv2_digits")["test_accuracy"]
    assert f"`swinv2_digits` ({100 * acc:.1f}% on the test digits" in pictures


def test_the_window_resize_numbers_are_the_tables():
    text = _section("Moving weights to another window")
    for name in ("swin_t", "swin_b_384"):
        M = minswin.get_config(name).window_size
        assert f"{2 * M - 1}²" in text, (name, M)
    rows = minswin.resize_relative_bias_table(np.zeros((13 ** 2, 4)), 12).shape[0]
    assert f"(169, nH) -> ({rows}, nH)" in text
