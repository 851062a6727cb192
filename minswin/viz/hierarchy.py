"""Figure 8: the hierarchical feature maps of a Swin model, drawn from a real forward pass.

Each stage is a square whose side is proportional to its map side (56, 28, 14, 7 tokens for
Swin-T at 224), cut into the windows its blocks attend in. Shapes come from the `trace` the
model fills during `forward`; windows and heads from the blocks themselves.
"""
import numpy as np
from matplotlib.patches import FancyArrowPatch, Rectangle

from ._common import host_image, new_figure


def stage_summary(model, trace):
    """Per stage: dict(name, shape (B, H, W, C), downsampling, window, padded (Hp, Wp): the map
    padded to whole windows, windows, shifts (sh, sw) per block, heads, blocks, merged: the
    shape after its patch merging or None) read from the trace of `model.trace(x)`
    and the blocks."""
    shapes = dict(trace)
    img = model.config.img_hw[0]                          # (H, W) of the built size
    out = []
    for i, layer in enumerate(model.layers):
        last = f"layers.{i}.blocks.{len(layer.blocks) - 1}"
        if last not in shapes:
            raise ValueError(f"trace: no entry {last!r}; pass the trace returned by "
                             "model.trace(x)")
        B, H, W, C = shapes[last]
        blk = layer.blocks[0]
        M = blk.window_size
        (Hp, Wp), _ = blk.window_shift_for(H, W)
        shifts = [b.window_shift_for(H, W)[1] for b in layer.blocks]
        out.append(dict(name=f"stage {i + 1}", shape=(B, H, W, C),
                        downsampling=img // H if H else 0, window=M, padded=(Hp, Wp),
                        windows=(Hp // M) * (Wp // M), heads=blk.num_heads,
                        blocks=len(layer.blocks), shifts=shifts,
                        merged=shapes.get(f"layers.{i}.downsample")))
    return out


def plot_hierarchy(model, trace, image=None, name=None):
    """The stages of `model` as squares of their real sizes, with windows, shapes and heads.

    Args: model: a SwinTransformer; trace: the list returned by `model.trace(x)`;
    image: optional (H, W, 3) input drawn at the left. Every number printed comes from the
    trace or the blocks; axes[0].texts hold one label per stage.
    """
    shapes = dict(trace)
    stages = stage_summary(model, trace)
    c = model.config
    fig = new_figure(16, 5.6)
    ax = fig.add_subplot()
    ax.set_aspect("equal")
    ax.axis("off")
    H0 = stages[0]["shape"][1]
    unit = 4.0 / H0                                        # stage 1 is 4 units wide
    x = 0.0
    img_side = 4.0
    if image is not None:
        ax.imshow(np.clip(host_image(image), 0, 1), extent=(x, x + img_side, 0, img_side),
                  zorder=1)
    ax.add_patch(Rectangle((x, 0), img_side, img_side, fill=False, lw=1.2))
    ax.text(x + img_side / 2, -0.35, f"input image\n{c.img_hw[0]}x{c.img_hw[1]}x{c.in_chans}",
            ha="center", va="top", fontsize=10)
    pe = shapes.get("patch_embed")
    prev_right = x + img_side
    x = prev_right + 1.6
    colours = ["#c6dbef", "#c7e9c0", "#fdd0a2", "#dadaeb", "#fcbba1", "#d9d9d9"]
    for i, s in enumerate(stages):
        B, H, W, C = s["shape"]
        side = H * unit
        y0 = (img_side - side) / 2
        ax.add_patch(Rectangle((x, y0), W * unit, side, fc=colours[i % len(colours)],
                               ec="black", lw=1.2))
        M = s["window"]
        for k in range(M, max(H, W), M):                  # window boundaries
            if k < W:
                ax.plot([x + k * unit] * 2, [y0, y0 + side], color="black", lw=0.6)
            if k < H:
                ax.plot([x, x + W * unit], [y0 + side - k * unit] * 2, color="black", lw=0.6)
        kinds = " / ".join("SW-MSA" if sh != (0, 0) else "W-MSA" for sh in s["shifts"][:2])
        plural = {k: "s" if s[k] > 1 else "" for k in ("windows", "blocks")}
        label = (f"{s['name']}: {H}x{W}x{C}\n{s['downsampling']}x downsampling\n"
                 f"{s['windows']} window{plural['windows']} of {M}x{M}\n"
                 f"{s['heads']} heads, {s['blocks']} block{plural['blocks']}\n({kinds}"
                 f"{', ...' if s['blocks'] > 2 else ''})")
        ax.text(x + W * unit / 2, -0.35, label, ha="center", va="top", fontsize=9.5)
        how = "patch partition\n+ linear embed" if i == 0 else "patch\nmerging"
        if i == 0 and pe is not None:
            how += f"\n-> {pe[1]}x{pe[2]}x{pe[3]}"
        ax.add_patch(FancyArrowPatch((prev_right + 0.1, img_side / 2), (x - 0.1, img_side / 2),
                                     arrowstyle="-|>", mutation_scale=14, lw=1.2))
        ax.text((prev_right + x) / 2, img_side / 2 + 0.25, how, ha="center", va="bottom",
                fontsize=8.5)
        prev_right = x + W * unit
        x = prev_right + 1.6
    tail = [(k, shapes[k]) for k in ("norm", "avgpool", "head") if k in shapes]
    if tail:
        txt = "\n".join(f"{k}: {'x'.join(map(str, v[1:]))}" for k, v in tail)
        ax.add_patch(FancyArrowPatch((prev_right + 0.1, img_side / 2), (x - 0.1, img_side / 2),
                                     arrowstyle="-|>", mutation_scale=14, lw=1.2))
        ax.text(x, img_side / 2, txt + "\n(class logits)", ha="left", va="center",
                fontsize=10, family="monospace")
        x += 2.6
    ax.set_xlim(-0.2, x + 0.2)
    ax.set_ylim(-2.3, img_side + 0.2)
    title = name or "model"
    fig.suptitle(f"Hierarchical feature maps of {title} (shapes from a real forward pass, "
                 "side of each square proportional to its map side)", fontsize=12)
    return fig
