"""The figures of the documentation, drawn from the library itself at build time."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def boundaries(path: Path) -> None:
    """The five boundary rules extending the same 1-D signal (what ``same`` sees)."""
    from fftconv._core.boundary import source_index

    plt = _pyplot()
    signal = np.array([1.0, 3.0, 2.0, 5.0, 4.0])
    pad = 4
    fig, axes = plt.subplots(5, 1, figsize=(7, 6.5), sharex=True)
    for ax, rule in zip(axes, ("constant", "reflect", "mirror", "nearest", "wrap")):
        if rule == "constant":
            values = np.concatenate([np.zeros(pad), signal, np.zeros(pad)])
        else:
            values = signal[source_index(signal.size, (pad, pad), rule)]
        x = np.arange(-pad, signal.size + pad)
        inside = (x >= 0) & (x < signal.size)
        ax.bar(x[inside], values[inside], color="#1f77b4")
        ax.bar(x[~inside], values[~inside], color="#ff7f0e", alpha=0.7)
        ax.axvspan(-0.5, signal.size - 0.5, color="0.92", zorder=0)
        ax.set_ylabel(rule if rule != "constant" else "constant\n(cval=0)", rotation=0,
                      ha="right", va="center")
        ax.set_yticks([])
    axes[-1].set_xticks(np.arange(-pad, signal.size + pad))
    axes[0].set_title("blue: the image  ·  orange: the extension each boundary rule adds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def same_centring(path: Path) -> None:
    """Where ``same`` takes its N outputs from the full convolution, odd and even K."""
    from fftconv._core.shapes import output_window

    plt = _pyplot()
    n = 8
    fig, axes = plt.subplots(2, 1, figsize=(7, 2.8))
    for ax, k in zip(axes, (3, 4)):
        full = n + k - 1
        a, b = output_window(n, k, "same")
        ax.bar(range(full), np.ones(full), color="0.85", edgecolor="0.5")
        ax.bar(range(a, b), np.ones(b - a), color="#2ca02c", edgecolor="0.3")
        ax.set_yticks([])
        ax.set_xticks(range(full))
        ax.set_title(f"N = {n}, K = {k}: full has {full} outputs; same keeps "
                     f"[{a}, {b}) — start (K − 1) // 2 = {(k - 1) // 2}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def planner_map(path: Path) -> None:
    """The method ``auto`` picks, by image and kernel size (this machine's rates)."""
    import fftconv

    plt = _pyplot()
    images = [64, 128, 256, 512, 1024, 2048, 4096, 8192]
    kernels = [3, 5, 7, 9, 15, 31, 63, 127, 255, 511]
    names = ["direct", "fft", "overlap-add"]
    grid = np.zeros((len(kernels), len(images)))
    for i, k in enumerate(kernels):
        for j, n in enumerate(images):
            p = fftconv.plan((n, n), (k, k), dtype="float32")
            grid[i, j] = names.index(p.method)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    colours = plt.matplotlib.colors.ListedColormap(["#1f77b4", "#ff7f0e", "#2ca02c"])
    ax.imshow(grid, cmap=colours, vmin=0, vmax=2, origin="lower", aspect="auto")
    ax.set_xticks(range(len(images)), [f"{n}²" for n in images])
    ax.set_yticks(range(len(kernels)), [f"{k}²" for k in kernels])
    ax.set_xlabel("image (float32)")
    ax.set_ylabel("kernel (general, not separable)")
    handles = [plt.matplotlib.patches.Patch(color=colours(i), label=name)
               for i, name in enumerate(names)]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title("method='auto' picks", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_all(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    boundaries(folder / "boundaries.png")
    same_centring(folder / "same.png")
    planner_map(folder / "planner.png")
