"""The paper's figures, each written as PNG and PDF (matplotlib, Agg backend).

- Figure 1: a few test images and all c class maps of each, titled with the class and the map's
  cosine similarity to the ground-truth class map (input-gradient maps [C, H, W] are summed over
  channels and shown in absolute value; Grad-CAM maps [h, w] as they are).
- Figure 2: the class-by-class explanation similarity averaged over the test set.
- Figure 3: test metric of LE per explainer, bars with std error bars, per model.
When the data behind a figure is missing the figure says so, so every expected file exists.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from ..fileio import atomic_write
from ..pipeline import Table
from .results import Results
from .tables import dataset_note

FORMATS = ("png", "pdf")
METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None}}  # no dates: reruns give the same bytes


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def save(fig, stem: Path) -> list[Path]:
    """``stem``.png and ``stem``.pdf, written atomically; the figure is closed."""
    paths = []
    for ext in FORMATS:
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=150, bbox_inches="tight", metadata=METADATA[ext])
        path = Path(f"{stem}.{ext}")
        atomic_write(path, lambda f: f.write(buf.getvalue()))
        paths.append(path)
    _plt().close(fig)
    return paths


def placeholder(stem: Path, text: str) -> list[Path]:
    fig, ax = _plt().subplots(figsize=(6, 1.5))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    return save(fig, stem)


def display_map(m: np.ndarray) -> np.ndarray:
    """[C, H, W] input-gradient map -> |sum over channels|; [h, w] (Grad-CAM) as it is."""
    return np.abs(m.sum(0)) if m.ndim == 3 else m


def figure1(data: dict, stem: Path, title: str, images: int = 3) -> list[Path]:
    plt = _plt()
    classes = [str(c) for c in data["classes"]]
    imgs, labels, preds = _np(data["images"]), _np(data["labels"]), _np(data["predictions"])
    maps, cos = _np(data["maps"]), _np(data["cos"])
    n, c = min(images, len(imgs)), len(classes)
    if n == 0:
        return placeholder(stem, f"{title}: the explanations file holds no images")
    fig, axes = plt.subplots(n, c + 1, figsize=(1.3 * (c + 1), 1.6 * n), squeeze=False)
    for i in range(n):
        img = imgs[i]
        ax = axes[i, 0]
        if img.shape[0] == 1:
            ax.imshow(img[0], cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(np.transpose(img, (1, 2, 0)))
        ax.set_title(f"label {classes[labels[i]]}\npred {classes[preds[i]]}", fontsize=7)
        for k in range(c):
            ax = axes[i, k + 1]
            ax.imshow(display_map(maps[i, k]), cmap="inferno")
            ax.set_title(f"{classes[k]}\ncos {cos[i, k]:.2f}", fontsize=7,
                         fontweight="bold" if k == labels[i] else "normal")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title}: image, then each class's map (ground truth in bold)", fontsize=9)
    return save(fig, stem)


def figure2(data: dict, stem: Path, title: str) -> list[Path]:
    plt = _plt()
    classes = [str(c) for c in data["classes"]]
    sim = _np(data["similarity"]).astype(float)
    fig, ax = plt.subplots(figsize=(0.5 * len(classes) + 2, 0.5 * len(classes) + 1.5))
    im = ax.imshow(sim, cmap="viridis")
    ax.set_xticks(range(len(classes)), classes, rotation=90)
    ax.set_yticks(range(len(classes)), classes)
    if len(classes) <= 12:
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, f"{sim[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if sim[i, j] < sim.mean() else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label=r"mean $\cos(e^k, e^m)$")
    ax.set_title(title, fontsize=9)
    return save(fig, stem)


def figure3(table: Table, results: Results, stem: Path) -> list[Path]:
    plt = _plt()
    labels = [r.label for r in table.rows]
    width = 0.8 / max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(labels) * len(table.models), 3.5))
    lows, highs = [], []
    for j, row in enumerate(table.rows):
        xs, means, stds = [], [], []
        for i, model in enumerate(table.models):
            stat = results.stat(table.dataset, model, results.choose(table.dataset, model, row).variant, table.metric)
            x = i + (j - (len(labels) - 1) / 2) * width
            if not stat.n:
                ax.text(x, 0.02, "missing", rotation=90, ha="center", va="bottom", fontsize=6,
                        transform=ax.get_xaxis_transform())
                continue
            std = 0.0 if math.isnan(stat.std) else stat.std
            xs.append(x), means.append(stat.mean), stds.append(std)
            lows.append(stat.mean - std), highs.append(stat.mean + std)
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=row.label)
    if lows:  # zoom to the bars: the differences between explainers are a fraction of a percent
        pad = max((max(highs) - min(lows)) * 0.5, 0.5)
        ax.set_ylim(max(min(lows) - pad, 0), min(max(highs) + pad, 100))
    ax.set_xticks(range(len(table.models)), table.models)
    ax.set_ylabel(f"{table.metric} (%), mean ± std over seeds")
    ax.legend(fontsize=7, ncols=2)
    ax.set_title(f"{table.caption}\n{dataset_note(table, results.plan.scale)}", fontsize=8)
    return save(fig, stem)
