"""The paper's figures, each written as PNG and PDF (matplotlib, Agg backend).

- Figure 1: a few test images, then each of the c class maps drawn over its image (upsampled
  bilinearly to the image's resolution), titled with the class and the map's cosine similarity to
  the ground-truth class map; one colorbar per image. Signed maps (input gradients [C, H, W],
  summed over colour channels) use a diverging colormap centred at 0; non-negative maps
  (Grad-CAM [h, w]) a sequential one from 0.
- Figure 2: the class-by-class explanation similarity averaged over the test set and over the
  explained row's seeds (the mean of one matrix per seed's run, ``rank_check.mean_over_seeds``, the very
  matrix claim C10 ranks), with lines saying which seeds it averages and what its diagonal is (the
  share of test images whose class map is not all zero).
- Figure 3: the test metric of LE per explainer, per model: mean ± std over seeds as points with
  error bars (the axis is zoomed, so no bar lengths are drawn), each seed as a small dot.
When the data behind a figure is missing the figure says so, so every expected file exists.
``draw_figure1/2/3`` return the matplotlib Figure (for tests); ``figure1/2/3`` draw and save it.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..fileio import atomic_write
from ..pipeline import Table
from .results import Results, Stat
from .tables import METRIC_NOTES, dataset_note

FORMATS = ("png", "pdf")
METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None}}  # no dates: reruns give the same bytes
SIGNED_CMAP, UNSIGNED_CMAP = "RdBu_r", "viridis"
OVERLAY_ALPHA = 0.6  # the map's opacity over the grayscale image
ONE_TOLERANCE = 1e-5  # a diagonal entry this close to 1 counts as 1 (float rounding of the test-set mean)


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


EXPLAINER_NAMES = {"grad": "Grad", "grad_input": "Grad*Input", "gradcam": "Grad-CAM", "guided_bp": "GuidedBP"}
DATASET_NAMES = {"cifar10": "CIFAR10", "mnist": "MNIST"}


def explanation_title(paper_dataset: str, dataset: str, run_label: str, explainer: str | None,
                      trained_with: str | None, real: bool = False) -> str:
    """Figures 1-2's title: the data (a stand-in named as such: "digits, standing in for CIFAR10"), the
    run, and the explainer, saying when it is not the one the run trained with and why."""
    paper = DATASET_NAMES.get(paper_dataset, paper_dataset)
    data = (paper if dataset == paper_dataset else f"{dataset}, real {paper} images" if real
            else f"{dataset}, standing in for {paper}")
    name = EXPLAINER_NAMES.get(explainer or "?", explainer or "?")
    text = f"{data}: {run_label}, explained with {name}"
    if trained_with and explainer and trained_with != explainer:
        text += (f" (the paper's explainer for {paper}'s Figures 1-2; the run trained with "
                 f"{EXPLAINER_NAMES.get(trained_with, trained_with)})")
    return text


# Figure 1 ------------------------------------------------------------------------------------

def display_map(m: np.ndarray) -> np.ndarray:
    """[C, H, W] input-space map -> its signed sum over channels [H, W]; [h, w] (Grad-CAM) as it is."""
    return m.sum(0) if m.ndim == 3 else m


def upsample(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An [h, w] map resized bilinearly to ``size`` (H, W); a map already that size is returned as it is."""
    if tuple(m.shape) == tuple(size):
        return m
    import torch
    import torch.nn.functional as F

    t = torch.as_tensor(np.ascontiguousarray(m), dtype=torch.float32)[None, None]
    return F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)[0, 0].numpy()


def grayscale(img: np.ndarray) -> np.ndarray:
    """[C, H, W] image in [0, 1] -> [H, W] luminance (ITU-R BT.601 weights for RGB)."""
    if img.shape[0] == 1:
        return img[0]
    return np.tensordot(np.array([0.299, 0.587, 0.114]), img[:3], axes=1)


@dataclass(frozen=True)
class MapScale:
    """The colour scale shared by the class maps of one image."""

    cmap: str
    vmin: float
    vmax: float
    signed: bool


def map_scale(maps: np.ndarray) -> MapScale:
    """Signed maps (any value < 0): a diverging colormap symmetric about 0; otherwise 0 .. max."""
    top = float(np.abs(maps).max()) or 1.0  # all-zero maps: any nonzero range
    if (maps < 0).any():
        return MapScale(SIGNED_CMAP, -top, top, True)
    return MapScale(UNSIGNED_CMAP, 0.0, top, False)


def colorbar_label(explainer: str, scale: MapScale, channels: int) -> str:
    what = f"{explainer} map $e^k$" + (f", sum over {channels} channels" if channels > 1 else "")
    return f"{what}\n(red: > 0, white: 0, blue: < 0)" if scale.signed else f"{what}\n(≥ 0; 0 at the dark end)"


def draw_figure1(data: dict, title: str, images: int = 3):
    """The Figure-1 Figure: per image, the image, then each class map over its grayscale (None: no images)."""
    plt = _plt()
    classes = [str(c) for c in data["classes"]]
    imgs, labels, preds = _np(data["images"]), _np(data["labels"]), _np(data["predictions"])
    maps, cos = _np(data["maps"]).astype(float), _np(data["cos"])
    explainer = str(data.get("explainer", "?"))
    n, c = min(images, len(imgs)), len(classes)
    if n == 0:
        return None
    fig, axes = plt.subplots(n, c + 1, figsize=(1.3 * (c + 1) + 1.2, 1.7 * n + 0.6), squeeze=False,
                             layout="constrained")
    for i in range(n):
        img = imgs[i]
        size = img.shape[1:]
        ax = axes[i, 0]
        if img.shape[0] == 1:
            ax.imshow(img[0], cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(np.transpose(img, (1, 2, 0)))
        ax.set_title(f"label {classes[labels[i]]}\npred {classes[preds[i]]}", fontsize=7)
        shown = np.stack([upsample(display_map(maps[i, k]), size) for k in range(c)])
        scale = map_scale(shown)
        gray = grayscale(img)
        for k in range(c):
            ax = axes[i, k + 1]
            ax.imshow(gray, cmap="gray", vmin=0, vmax=1)
            im = ax.imshow(shown[k], cmap=scale.cmap, vmin=scale.vmin, vmax=scale.vmax, alpha=OVERLAY_ALPHA)
            zero = ", all 0" if not np.any(maps[i, k]) else ""  # an all-zero map (Figure 2's diagonal counts them)
            ax.set_title(f"{classes[k]}\ncos {cos[i, k]:.2f}{zero}", fontsize=7,
                         fontweight="bold" if k == labels[i] else "normal")
        bar = fig.colorbar(im, ax=axes[i, :].tolist(), shrink=0.9, pad=0.01)
        bar.set_label(colorbar_label(explainer, scale, maps[i, 0].shape[0] if maps.ndim == 5 else 1), fontsize=6)
        bar.ax.tick_params(labelsize=6)
        bar.solids.set_alpha(OVERLAY_ALPHA)  # the colours as they appear over the image
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title}\nimage, then each class's map over it (ground truth in bold; "
                 "cos: cosine similarity to the ground-truth class's map; one colour scale per image)", fontsize=8)
    return fig


def figure1(data: dict, stem: Path, title: str, images: int = 3) -> list[Path]:
    fig = draw_figure1(data, title, images)
    if fig is None:
        return placeholder(stem, f"{title}: the explanations file holds no images")
    return save(fig, stem)


# Figure 2 ------------------------------------------------------------------------------------

def diagonal_note(similarity: np.ndarray, classes: list[str], explainer: str) -> str:
    """What Figure 2's diagonal is, and which classes have all-zero maps on some test images.

    Entry (k, m) is the test-set mean of cos(e^k, e^m) (``explain.class_similarity``), where an
    all-zero map gives cosine 0. So entry (k, k) is 1 on an image whose class-k map is nonzero and
    0 where it is all zero: the diagonal is the share of test images with a nonzero class-k map.
    """
    diag = np.diag(np.asarray(similarity, dtype=float))
    head = ("Diagonal: mean over test images of cos(e^k, e^k), 1 for a nonzero map and 0 for an all-zero one, "
            "i.e. the share of test images whose class-k map is nonzero (an all-zero map also gives 0 off the diagonal).")
    below = [(name, d) for name, d in zip(classes, diag) if d < 1 - ONE_TOLERANCE]
    if not below:
        return f"{head}\nHere it is 1 for every class: no class map is all zero on any test image."
    why = " (Grad-CAM's ReLU zeroes a map whose weighted activations are nowhere positive)" if explainer == "gradcam" else ""
    listed = ", ".join(f"{name} {d:.4g}" for name, d in below)
    return f"{head}\nBelow 1 here, so some maps are all zero{why}: {listed}."


def seeds_note(data: dict) -> str:
    """Which seeds Figure 2 averages (``seeds``, ``missing``: :func:`introspect.report.rank_check.mean_over_seeds`);
    "" for one run's matrix."""
    seeds, missing = list(data.get("seeds") or []), list(data.get("missing") or [])
    if not seeds:
        return ""
    plural = "s" * (len(seeds) != 1)
    text = (f"Each entry averages the test-set means of the runs of seed{plural} {', '.join(map(str, seeds))} "
            f"({len(seeds)} run{plural}); claim C10 ranks the known-similar pairs on this mean.")
    if missing:
        text += f" Not averaged (explanations missing or stale): seed{'s' * (len(missing) != 1)} {', '.join(map(str, missing))}."
    return text + "\n"


def draw_figure2(data: dict, title: str):
    plt = _plt()
    classes = [str(c) for c in data["classes"]]
    sim = _np(data["similarity"]).astype(float)
    c = len(classes)
    fig, ax = plt.subplots(figsize=(max(0.5 * c + 2.5, 6.5), 0.5 * c + 2.5), layout="constrained")
    im = ax.imshow(sim, cmap="viridis", vmin=-1.0 if (sim < 0).any() else 0.0, vmax=1.0)
    ax.set_xticks(range(c), classes, rotation=90)
    ax.set_yticks(range(c), classes)
    ax.set_xlabel("class m (map $e^m$)")
    ax.set_ylabel("class k (map $e^k$)")
    if c <= 12:
        for i in range(c):
            for j in range(c):
                ax.text(j, i, f"{sim[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if sim[i, j] < 0.5 else "black")
    over = "test images and seeds" if data.get("seeds") else "test images"
    fig.colorbar(im, ax=ax, fraction=0.046, label=rf"mean over {over} of $\cos(e^k, e^m)$")
    ax.set_title(title, fontsize=9)
    fig.text(0.0, 0.0, seeds_note(data) + diagonal_note(sim, classes, str(data.get("explainer", "?"))), fontsize=6.5,
             ha="left", va="top", wrap=True)
    return fig


def figure2(data: dict, stem: Path, title: str) -> list[Path]:
    return save(draw_figure2(data, title), stem)


# Figure 3 ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    """One plotted mean ± std: a table row (explainer) on one model, at horizontal position x."""

    label: str
    model: str
    x: float
    stat: Stat  # its per-seed values

    @property
    def n(self) -> int:
        return self.stat.n

    @property
    def values(self) -> tuple[float, ...]:
        return self.stat.values

    @property
    def mean(self) -> float:
        return self.stat.mean

    @property
    def error_bar(self) -> float:  # the sample std over seeds; none (0) for a single seed
        return self.stat.std if self.n >= 2 else 0.0


def figure3_points(table: Table, results: Results) -> list[Point]:
    """Per (row, model), in row-major order, the point Figure 3 draws (no values: no run present).
    Models sit at x = 0, 1, ...; a model's rows are spread around it, 0.8 wide in all."""
    rows = len(table.rows)
    width = 0.8 / max(rows, 1)
    out: list[Point] = []
    for j, row in enumerate(table.rows):
        for i, model in enumerate(table.models):
            stat = results.stat(table.dataset, model, results.choose(table.dataset, model, row).variant, table.metric)
            x = i + (j - (rows - 1) / 2) * width
            out.append(Point(row.label, model, x, stat))
    return out


def metric_label(metric: str) -> str:
    return METRIC_NOTES.get(metric, metric.replace("_", " "))


def draw_figure3(table: Table, results: Results):
    plt = _plt()
    points = figure3_points(table, results)
    models = len(table.models)
    fig, ax = plt.subplots(figsize=(2.5 + 1.2 * len(table.rows) * models, 3.8), layout="constrained")
    seed_offset = 0.25 * 0.8 / max(len(table.rows), 1)  # a quarter of a row's slot to the right
    for j, row in enumerate(table.rows):
        mine = points[j * models:(j + 1) * models]
        drawn = [p for p in mine if p.n]
        counts = [p.n for p in drawn]
        ns = str(counts[0]) if len(set(counts)) == 1 else "/".join(map(str, counts)) + " by model"
        colour = f"C{j % 10}"
        if drawn:
            ax.errorbar([p.x for p in drawn], [p.mean for p in drawn], yerr=[p.error_bar for p in drawn], fmt="o",
                        color=colour, capsize=4, markersize=6, label=f"{row.label} (n={ns})")
        for p in drawn:  # every seed, beside its error bar, so the spread behind it is visible
            ax.plot([p.x + seed_offset] * p.n, p.values, linestyle="none", marker="o", markersize=3,
                    markerfacecolor="none", color=colour, alpha=0.7)
        for p in mine:
            if not p.n:
                ax.text(p.x, 0.02, f"{row.label}: missing", rotation=90, ha="center", va="bottom", fontsize=6,
                        transform=ax.get_xaxis_transform())
    ax.set_xticks(range(models), table.models)
    ax.set_xlim(-0.5, models - 0.5)
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.grid(axis="y", linewidth=0.4, alpha=0.5)
    ax.set_ylabel(metric_label(table.metric), fontsize=8)
    if any(p.n for p in points):
        ax.legend(fontsize=7, title="mean ± std over seeds (n seeds);\nhollow: each seed", title_fontsize=7,
                  loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never over a point
    ax.set_title(f"{table.caption}\n{dataset_note(table, results.plan.scale)}; epoch protocol: {results.protocol}; "
                 "axis zoomed to the points", fontsize=8)
    return fig


def figure3(table: Table, results: Results, stem: Path) -> list[Path]:
    return save(draw_figure3(table, results), stem)
