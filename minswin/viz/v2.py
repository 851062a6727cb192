"""Swin V2's position bias in pictures, and what moving to another window does to v1's.

    plot_log_spaced_coordinates   the offsets, linear vs log-spaced: what cpb_mlp sees
    plot_cpb_table                a head's continuous bias as a (2M-1) x (2M-1) image
    plot_table_resize             a v1 table before and after the bicubic resize
    plot_window_transfer          v1's resized table beside V2's network on the new window

A v1 table is one learned number per offset; V2's table is a network of the offset,
16 * sigmoid(cpb_mlp(coords)), so a model moved to another window simply evaluates the
network on the new offsets (ops/continuous_bias.py).
"""
import numpy as np

from ..ops.continuous_bias import COORD_RANGE, log_spaced, log_spaced_coordinates
from ..ops.resize import resize_relative_bias_table, table_window
from ._common import check_heads, host, new_figure

_BIAS_RANGE = 16.0


def cpb_table(fc1_weight, fc1_bias, fc2_weight, window, pretrained_window=0):
    """16 * sigmoid(cpb_mlp(coords)) for every offset of an M-window: ((2M-1)^2, nH), the V2
    counterpart of a v1 relative_position_bias_table (already through the sigmoid)."""
    w1, b1, w2 = (host(a).astype(np.float64) for a in (fc1_weight, fc1_bias, fc2_weight))
    t = log_spaced_coordinates(window, pretrained_window).reshape(-1, 2)   # (T, 2)
    raw = np.maximum(t @ w1.T + b1, 0) @ w2.T             # (T, nH) cpb_mlp
    return _BIAS_RANGE / (1.0 + np.exp(-raw))


def attention_cpb_table(attn, window=None):
    """cpb_table of a WindowAttentionV2 module, at its own window or at `window`."""
    p = attn.params
    return cpb_table(p["cpb_mlp.0.weight"], p["cpb_mlp.0.bias"], p["cpb_mlp.2.weight"],
                     attn.window_size if window is None else window,
                     attn.pretrained_window_size)


def _offset_ticks(ax, M):
    side = 2 * M - 1
    offsets = np.arange(-(M - 1), M)
    step = max(1, (side + 8) // 9)
    ticks = np.arange(0, side, step)
    ax.set_xticks(ticks, offsets[::step])
    ax.set_yticks(ticks, offsets[::step])
    ax.set_xlabel("column offset dc")
    ax.set_ylabel("row offset dr")


def _table_image(ax, table, head, title, vmin=None, vmax=None, cmap="viridis"):
    M = table_window(table)
    side = 2 * M - 1
    im = ax.imshow(table[:, head].reshape(side, side), cmap=cmap, vmin=vmin, vmax=vmax,
                   interpolation="nearest")
    _offset_ticks(ax, M)
    ax.set_title(title, fontsize=10)
    return im


def plot_log_spaced_coordinates(window=8, pretrained_window=0, new_window=None):
    """Left: offset -> coordinate, linear (offset / (P-1) * 8) against log-spaced
    (sign * log2(1 + |t|) / 3); the dashed lines mark the window's own offsets and, when
    new_window is given, the offsets a larger window adds beyond the trained range.
    Right: the (2M-1)^2 coordinate pairs cpb_mlp is evaluated on, linear and log-spaced."""
    M = int(window)
    coords = log_spaced_coordinates(M, pretrained_window)  # (2M-1, 2M-1, 2)
    P = pretrained_window or M
    fig = new_figure(11.5, 4.8)
    ax, ax2 = fig.subplots(1, 2)
    far = max(M, new_window or M)
    d = np.linspace(-(far - 1), far - 1, 400)
    t = d / max(P - 1, 1) * COORD_RANGE
    ax.plot(d, t / COORD_RANGE, color="#999999", label="linear: offset / (P-1)")
    ax.plot(d, log_spaced(t), color="#1f77b4", lw=2, label="log-spaced (V2)")
    ints = np.arange(-(M - 1), M)
    ti = ints / max(P - 1, 1) * COORD_RANGE
    ax.plot(ints, log_spaced(ti), "o", color="#1f77b4", ms=4)
    ax.plot(ints, ti / COORD_RANGE, "o", color="#999999", ms=3)
    if new_window:
        for s in (-1, 1):
            ax.axvspan(s * (M - 1), s * (new_window - 1), color="#ff7f0e", alpha=0.12)
        ax.text(0.02, 0.97, f"orange: offsets window {new_window} adds", transform=ax.transAxes,
                va="top", fontsize=9, color="#c0580a")
    ax.set_xlabel("offset dr (or dc), in tokens")
    ax.set_ylabel("coordinate fed to cpb_mlp")
    ax.set_title(f"window {M}, normalised by pretrained window P={P}", fontsize=10)
    ax.legend(loc="lower right", fontsize=9)
    ax.grid(alpha=0.3)
    lin = np.stack(np.meshgrid(ints, ints, indexing="ij"), -1) / max(P - 1, 1)
    ax2.scatter(lin[..., 1].ravel(), lin[..., 0].ravel(), s=12, color="#999999",
                label="linear")
    ax2.scatter(coords[..., 1].ravel(), coords[..., 0].ravel(), s=12, color="#1f77b4",
                label="log-spaced")
    ax2.set_aspect("equal")
    ax2.set_xlabel("column coordinate")
    ax2.set_ylabel("row coordinate")
    ax2.set_title(f"the {(2 * M - 1) ** 2} offsets of a {M}x{M} window\n(log spacing "
                  "spreads the near ones, packs the far ones)", fontsize=10)
    ax2.legend(loc="upper left", fontsize=9)
    fig.suptitle("Swin V2's log-spaced relative coordinates", fontsize=11)
    return fig


def plot_cpb_table(table, heads=None, name="cpb_mlp", max_heads=4):
    """Each chosen head's continuous bias 16 * sigmoid(cpb_mlp(coords)) as a (2M-1) x (2M-1)
    image. table: ((2M-1)^2, nH) from `cpb_table` / `attention_cpb_table`."""
    t = host(table)
    M = table_window(t)
    heads = check_heads(heads, t.shape[1], max_heads)
    fig = new_figure(3.6 * len(heads) + 0.8, 4.0)
    axes = fig.subplots(1, len(heads), squeeze=False)[0]
    lo, hi = t[:, heads].min(), t[:, heads].max()         # one scale for the heads drawn
    for ax, h in zip(axes, heads):
        im = _table_image(ax, t, h, f"head {h}", vmin=lo, vmax=hi)
    bar = fig.colorbar(im, ax=list(axes), shrink=0.85)
    bar.set_label("bias 16 sigmoid(.), always in (0, 16)")
    fig.suptitle(f"Continuous position bias of {name}, M={M} ({2 * M - 1}x{2 * M - 1} "
                 "offsets; centre = same token)", fontsize=11)
    return fig


def plot_table_resize(table, new_window, head=0, name="relative_position_bias_table"):
    """A v1 table of one head before and after the bicubic resize to new_window (the official
    fine-tuning step), on one colour scale."""
    t = host(table).astype(np.float64)
    M = table_window(t)
    check_heads([head], t.shape[1], 1)
    resized = resize_relative_bias_table(t, new_window)
    m = max(np.abs(t[:, head]).max(), np.abs(resized[:, head]).max(), 1e-12)
    fig = new_figure(10.5, 4.6)
    a0, a1 = fig.subplots(1, 2)
    _table_image(a0, t, head, f"window {M}: {t.shape[0]} offsets", -m, m, "RdBu_r")
    im = _table_image(a1, resized, head, f"bicubic to window {new_window}: "
                      f"{resized.shape[0]} offsets", -m, m, "RdBu_r")
    fig.colorbar(im, ax=[a0, a1], shrink=0.85).set_label("bias")
    fig.suptitle(f"{name}, head {head}\nbicubic resize as the official fine-tuning "
                 "(F.interpolate, align_corners=False)", fontsize=11)
    return fig


def plot_window_transfer(v1_table, attn_v2, new_window, head=0):
    """2 x 2: v1's table at its window and bicubically resized to new_window (top); V2's
    network evaluated on its own window and on new_window's offsets (bottom)."""
    t = host(v1_table).astype(np.float64)
    M = table_window(t)
    check_heads([head], t.shape[1], 1)
    resized = resize_relative_bias_table(t, new_window)
    before = attention_cpb_table(attn_v2)
    after = attention_cpb_table(attn_v2, new_window)
    check_heads([head], before.shape[1], 1)
    fig = new_figure(10.5, 9.0)
    axes = fig.subplots(2, 2)
    m = max(np.abs(t[:, head]).max(), np.abs(resized[:, head]).max(), 1e-12)
    _table_image(axes[0, 0], t, head, f"v1: learned table, window {M}", -m, m, "RdBu_r")
    im = _table_image(axes[0, 1], resized, head, f"v1: bicubic resize to window {new_window}",
                      -m, m, "RdBu_r")
    fig.colorbar(im, ax=list(axes[0]), shrink=0.85).set_label("v1 bias")
    Mv = attn_v2.window_size
    lo = min(before[:, head].min(), after[:, head].min())
    hi = max(before[:, head].max(), after[:, head].max())
    _table_image(axes[1, 0], before, head, f"V2: cpb_mlp on window {Mv}'s offsets", lo, hi)
    im = _table_image(axes[1, 1], after, head, f"V2: the same cpb_mlp on window "
                      f"{new_window}'s offsets", lo, hi)
    fig.colorbar(im, ax=list(axes[1]), shrink=0.85).set_label("V2 bias 16 sigmoid(.)")
    fig.suptitle(f"Moving to window {new_window}, head {head}: v1 interpolates a table, V2 "
                 "evaluates a function", fontsize=11)
    return fig
