"""Figure 2: the cyclic shift, step by step, as a picture and as an animated GIF.

The shifted grid of block l+1 cuts the map into nine regions. They carry the numbers of
`region_labels` everywhere (the official count: 3 x row band + column band, the bands taken in
the rolled frame), so on the map before the roll they read 8 6 7 / 2 0 1 / 5 3 4 and after it
0 1 2 / 3 4 5 / 6 7 8. The model never handles nine odd-sized pieces: it rolls the map up by
S rows (the top row of regions goes to the bottom), then left by S columns (the left column
of regions goes to the right) and cuts the usual M x M windows. Every panel below is
the region map pushed through `cyclic_shift`, the function the model calls.
"""
import numpy as np

from ..ops.masks import check_window_shift
from ..ops.window import cyclic_shift
from ._common import (
    REGION_CMAP,
    check_format,
    check_writable,
    draw_boundaries,
    draw_cell_grid,
    host_image,
    new_figure,
    piece_centres,
    shift_title,
    suptitle,
)
from .geometry import (
    first_seen,
    regions_in_windows,
    square_grid,
    unrolled_region_labels,
    window_ids,
)


def shift_steps(H, W, window, shift):
    """The region map (`region_labels` numbers) before, after the row roll and after both rolls.

    Returns a dict of (H, W) int arrays: "map", "rows" (rolled up by sh) and "rolled" (rolled
    up by sh and left by sw, which is `cyclic_shift` of the model).
    """
    M, (sh, sw) = check_window_shift(H, W, window, shift)
    lab = unrolled_region_labels(H, W, M, (sh, sw))[None, :, :, None].astype(np.float64)
    rows = cyclic_shift(lab, (sh, 0))                      # (1, H, W, 1)
    both = cyclic_shift(lab, (sh, sw))                     # (1, H, W, 1)
    return {"map": lab[0, :, :, 0].astype(np.int64),
            "rows": rows[0, :, :, 0].astype(np.int64),
            "rolled": both[0, :, :, 0].astype(np.int64)}


def _image_tokens(image, H, W):
    """Pixel size of one token when an image of H x W tokens is drawn underneath."""
    image = host_image(image)
    ph, pw = image.shape[0] // H, image.shape[1] // W
    if ph < 1 or pw < 1 or image.shape[0] % H or image.shape[1] % W:
        raise ValueError(f"image: expected a size that is a multiple of the {H}x{W} token map,"
                         f" got {image.shape[:2]}")
    return image, ph, pw


def _draw_regions(ax, labels, image=None, fontsize=16, alpha=None, interpolation="bilinear"):
    """Region map (`region_labels` numbers) coloured and numbered; optionally over an image."""
    H, W = labels.shape
    if image is not None:
        ax.imshow(image, extent=(-0.5, W - 0.5, H - 0.5, -0.5), interpolation=interpolation)
        ax.imshow(labels, cmap=REGION_CMAP, vmin=-0.5, vmax=8.5, alpha=alpha or 0.45,
                  interpolation="nearest")
    else:
        ax.imshow(labels, cmap=REGION_CMAP, vmin=-0.5, vmax=8.5, interpolation="nearest")
        if max(H, W) <= 32:
            draw_cell_grid(ax, H, W)
    draw_boundaries(ax, labels, color="white", lw=1.5)
    for k in np.unique(labels):
        for r0, c0 in piece_centres(labels == k):
            ax.text(c0, r0, str(k), ha="center", va="center", fontsize=fontsize,
                    fontweight="bold", color="white")
    ax.set_xlim(-0.5, W - 0.5)
    ax.set_ylim(H - 0.5, -0.5)
    step = 1 if max(H, W) <= 16 else max(H, W) // 8
    ax.set_xticks(np.arange(0, W, step))
    ax.set_yticks(np.arange(0, H, step))
    ax.tick_params(labelsize=7)


def plot_cyclic_shift(size=8, window=4, shift=None, image=None):
    """The cyclic shift in four panels: regions on the map, rows rolled, columns rolled, windows.

    Args: size: map side in tokens; window: M; shift: S (default M // 2); image: optional
    array drawn under the tokens (its side must be a multiple of `size`).
    Returns the Figure; axes 0..3 show shift_steps()["map"], ["rows"], ["rolled"], ["rolled"]
    as their first image.
    """
    H, W, M, (sh, sw) = square_grid(size, window, shift)
    S = shift_title(sh, sw)
    steps = shift_steps(H, W, M, (sh, sw))
    img = rows_img = rolled_img = None
    if image is not None:
        img, ph, pw = _image_tokens(image, H, W)
        rows_img = cyclic_shift(img[None], (sh * ph, 0))[0]
        rolled_img = cyclic_shift(img[None], (sh * ph, sw * pw))[0]
    fs = 16 if H <= 16 else 9
    fig = new_figure(16, 5.2)
    axes = fig.subplots(1, 4)
    _draw_regions(axes[0], steps["map"], img, fs)
    draw_boundaries(axes[0], window_ids(H, W, M, (sh, sw)), color="black", lw=2.5,
                    linestyles="--")
    axes[0].set_title(f"block l+1: the grid moved by S={S}\ncuts the map into "
                      f"{len(np.unique(steps['map']))} regions (dashed: windows)", fontsize=10)
    top = first_seen(steps["map"][:sh])
    _draw_regions(axes[1], steps["rows"], rows_img, fs)
    axes[1].set_title(f"step 1: roll up by {sh} rows\nregions {' '.join(map(str, top))} "
                      "wrap to the bottom", fontsize=10)
    left = first_seen(steps["rows"][:, :sw].T)
    _draw_regions(axes[2], steps["rolled"], rolled_img, fs)
    axes[2].set_title(f"step 2: roll left by {sw} columns\nregions {' '.join(map(str, left))}"
                      " wrap to the right", fontsize=10)
    _draw_regions(axes[3], steps["rolled"], rolled_img, fs)
    draw_boundaries(axes[3], window_ids(H, W, M, 0), color="black", lw=3.5)
    wins = regions_in_windows(H, W, M, (sh, sw))
    shown = wins if len(wins) <= 4 else [w for w in wins if len(w) > 1][:4] + ["..."]
    text = "  ".join("[" + " ".join(map(str, w)) + "]" if w != "..." else w for w in shown)
    axes[3].set_title(f"the regular {M}x{M} windows of the rolled map\n{len(wins)} windows: "
                      f"{text}", fontsize=10)
    suptitle(fig, "Cyclic shift (roll up and left by S, `cyclic_shift`): each region keeps its "
                  "number, the one region_labels gives it in the rolled frame")
    return fig


def _band_names(n, M, s):
    """The official slices of one axis of the rolled frame, as text, and their centres."""
    if s == 0:
        return ["0:"], [(n - 1) / 2]
    edges = [0, n - M, n - s, n]
    names = [f"0:-{M}", f"-{M}:-{s}", f"-{s}:"]
    return names, [(a + b - 1) / 2 for a, b in zip(edges, edges[1:])]


def plot_region_numbering(size=8, window=4, shift=None):
    """The nine regions and their one numbering, in both frames.

    Right: the rolled frame, where `region_labels` counts the regions: the official slices
    (0:-M), (-M:-s), (-s:) of each axis make the bands, and region = 3 x row band + column
    band. Left: the same numbers on the map before the roll, where each region really lies
    (`cyclic_shift` moved it up by sh and left by sw). Arrows join each region's two places.
    axes[0]'s first image is the map before the roll, axes[1]'s is `region_labels` itself;
    every number drawn on them is a `region_labels` value.
    """
    from matplotlib.patches import ConnectionPatch
    H, W, M, (sh, sw) = square_grid(size, window, shift)
    S = shift_title(sh, sw)
    steps = shift_steps(H, W, M, (sh, sw))
    before, after = steps["map"], steps["rolled"]
    fs = 16 if H <= 16 else 9
    fig = new_figure(12.5, 6.6)
    axes = fig.subplots(1, 2, gridspec_kw={"wspace": 0.25})
    _draw_regions(axes[0], before, fontsize=fs)
    draw_boundaries(axes[0], window_ids(H, W, M, (sh, sw)), color="black", lw=2.5,
                    linestyles="--")
    axes[0].set_title(f"the {H}x{W} map before the roll: where each region lies\n(dashed: the "
                      f"shifted windows of block l+1)", fontsize=10)
    _draw_regions(axes[1], after, fontsize=fs)
    draw_boundaries(axes[1], window_ids(H, W, M, 0), color="black", lw=3.5)
    rows, rc = _band_names(H, M, sh)
    cols, cc = _band_names(W, M, sw)
    axes[1].set_yticks(rc, [f"rows {r}\nband {i}" for i, r in enumerate(rows)], fontsize=8)
    axes[1].set_xticks(cc, [f"cols {c}\nband {j}" for j, c in enumerate(cols)], fontsize=8)
    axes[1].set_title(f"after cyclic_shift (up {sh}, left {sw}): region_labels(H, W, M, S)\n"
                      "region = 3 x row band + column band (solid: the M x M windows)",
                      fontsize=10)
    for k in np.unique(after):                             # one arrow per region
        r0, c0 = piece_centres(before == k)[0]
        r1, c1 = piece_centres(after == k)[0]
        fig.add_artist(ConnectionPatch((c0, r0), (c1, r1), "data", "data", axesA=axes[0],
                                       axesB=axes[1], arrowstyle="->", color="0.35", lw=0.8,
                                       alpha=0.6))
    suptitle(fig, f"One numbering of the nine regions (map {H}x{W}, M={M}, S={S}): the numbers "
                  "region_labels gives in the rolled frame, drawn in both frames")
    return fig


def shift_frames(H, W, window, shift):
    """The frames of the animation: (label map, rolled rows, rolled cols, caption) tuples."""
    M, (sh, sw) = check_window_shift(H, W, window, shift)
    lab = unrolled_region_labels(H, W, M, (sh, sw))[None, :, :, None].astype(np.float64)
    frames = [(lab, 0, 0, "the map: shifted windows make 9 regions")] * 2
    for k in range(1, sh + 1):
        frames.append((cyclic_shift(lab, (k, 0)), k, 0, f"roll up: {k} of {sh} rows"))
    for k in range(1, sw + 1):
        frames.append((cyclic_shift(lab, (sh, k)), sh, k, f"roll left: {k} of {sw} columns"))
    done = cyclic_shift(lab, (sh, sw))
    frames += [(done, sh, sw, f"cut into regular {M}x{M} windows")] * 3
    return [(f[0][0, :, :, 0].astype(np.int64),) + f[1:] for f in frames]


def shift_animation(size=8, window=4, shift=None, image=None):
    """An animation of the roll, one row or column per frame; returns (Figure, FuncAnimation)."""
    from matplotlib.animation import FuncAnimation
    H, W, M, (sh, sw) = square_grid(size, window, shift)
    frames = shift_frames(H, W, M, (sh, sw))
    img = None
    if image is not None:
        img, ph, pw = _image_tokens(image, H, W)
        step = max(1, min(ph, pw) // 12)                   # ~12 pixels a token is plenty here
        img, ph, pw = img[::step, ::step], ph // step, pw // step
        img = img[:H * ph, :W * pw]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(4.6, 4.9))                       # fixed margins: every frame alike
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.03, 0.03, 0.94, 0.87))

    def draw(i):
        lab, kr, kc, caption = frames[i]
        ax.clear()
        under = None if img is None else cyclic_shift(img[None], (kr * ph, kc * pw))[0]
        _draw_regions(ax, lab, under, 16 if H <= 16 else 9, interpolation="nearest")
        if i == 0 or i == 1:
            draw_boundaries(ax, window_ids(H, W, M, (sh, sw)), color="black", lw=2.5,
                            linestyles="--")
        if i >= len(frames) - 3:
            draw_boundaries(ax, window_ids(H, W, M, 0), color="black", lw=3.5)
        ax.set_title(caption, fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
        return ax.images

    anim = FuncAnimation(fig, draw, frames=len(frames), interval=700, blit=False)
    return fig, anim


def save_shift_gif(path, size=8, window=4, shift=None, image=None, fps=1.5):
    """Write the roll animation as a GIF (Pillow writer). Returns (path, number of frames).

    The path must end in .gif and be writable; both are checked before anything is drawn.
    """
    from matplotlib.animation import PillowWriter
    check_format(path, ("gif",))
    check_writable(path)
    fig, anim = shift_animation(size, window, shift, image)
    anim.save(str(path), writer=PillowWriter(fps=fps), dpi=72)
    return str(path), len(shift_frames(*square_grid(size, window, shift)))
