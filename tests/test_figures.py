"""The report's figures read right: Figure 3 shows points with error bars, Figure 1 draws each
class map over its image at the image's resolution with a colorbar, Figure 2 labels its axes and
says what its diagonal is. The matplotlib Figure objects are inspected (nothing is trained)."""
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from matplotlib.container import BarContainer, ErrorbarContainer

from introspect import pipeline
from introspect.explain import class_similarity
from introspect.report import figures
from introspect.report.results import Choice, Stat

CLASSES = ["airplane", "automobile", "bird", "cat"]
SEEDS = {"le_grad": (97.1, 97.3, 97.2), "le_gradcam": (97.4, 97.0, 97.5), "le_guided_bp": (96.8,)}


def explanations(map_shape: tuple, n: int = 2, image_channels: int = 3, size: int = 16) -> dict:
    g = torch.Generator().manual_seed(0)
    c = len(CLASSES)
    return {"run": "fake", "explainer": "gradcam" if len(map_shape) == 2 else "grad", "classes": CLASSES,
            "similarity": torch.eye(c), "images": torch.rand(n, image_channels, size, size, generator=g),
            "labels": torch.arange(n), "predictions": torch.arange(n),
            "maps": torch.randn(n, c, *map_shape, generator=g), "cos": torch.rand(n, c, generator=g)}


def fake_results(values: dict[str, tuple[float, ...]], seeds: int = 3):
    """What draw_figure3 reads of a Results: each row's per-seed values (a row absent: no run present)."""
    def stat(dataset, model, variant, key):
        return Stat(values.get(variant, ()), seeds)

    def choose(dataset, model, row):
        (variant,) = row.variants
        return Choice(variant if variant in values else None, None)

    return SimpleNamespace(stat=stat, choose=choose, plan=SimpleNamespace(scale="quick"), protocol="last")


def figure3_table(rows=("le_grad", "le_gradcam", "le_guided_bp")) -> pipeline.Table:
    return pipeline.Table(name="figure3", caption="LE with each explainer", paper_table="figure3",
                          paper_dataset="cifar10", dataset="cifar10", metric="test_acc", models=["resnet8"],
                          rows=[pipeline.Row(r, "le", None, {r: None}) for r in rows])


def texts(fig) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and callable(a.get_text)))


def colorbars(fig) -> list:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


# Figure 3 -----------------------------------------------------------------------------------

def test_figure3_draws_mean_and_std_as_points_with_error_bars_not_bars():
    fig = figures.draw_figure3(figure3_table(), fake_results(SEEDS))
    ax = fig.axes[0]
    assert not [c for c in ax.containers if isinstance(c, BarContainer)]
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 3
    for container, row in zip(bars, ("le_grad", "le_gradcam", "le_guided_bp")):
        line, caps, (segments,) = container.lines
        assert line.get_ydata()[0] == pytest.approx(np.mean(SEEDS[row]))
        assert line.get_marker() == "o" and line.get_linestyle() == "None"  # points, no connecting line
        (lo, hi), = segments.get_segments()[0][:, 1:].T  # the bar's lower and upper end
        half = np.std(SEEDS[row], ddof=1) if len(SEEDS[row]) > 1 else 0.0
        assert (hi - lo) / 2 == pytest.approx(half)
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["le_grad (n=3)", "le_gradcam (n=3)", "le_guided_bp (n=1)"]
    assert ax.get_ylabel().startswith("test accuracy (%)")
    figures._plt().close(fig)


def test_figure3_points_hold_every_seed_and_mark_a_missing_row():
    table = figure3_table(("le_grad", "le_grad_input"))
    points = figures.figure3_points(table, fake_results(SEEDS))
    assert [(p.label, p.values) for p in points] == [("le_grad", SEEDS["le_grad"]), ("le_grad_input", ())]
    assert points[0].error_bar == pytest.approx(np.std(SEEDS["le_grad"], ddof=1)) and points[0].n == 3
    fig = figures.draw_figure3(table, fake_results(SEEDS))
    assert "le_grad_input: missing" in texts(fig)
    figures._plt().close(fig)


def test_figure3_with_no_run_present_draws_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. matplotlib's "no artists with labels" for an empty legend
        fig = figures.draw_figure3(figure3_table(), fake_results({}))
    assert fig.axes[0].get_legend() is None and texts(fig).count(": missing") == 3
    figures._plt().close(fig)


# Figure 1 -----------------------------------------------------------------------------------

def overlay(fig, row: int, k: int):
    """(background, map) images of class k's panel in image row ``row``."""
    per_row = len(CLASSES) + 1
    images = fig.axes[row * per_row + 1 + k].get_images()
    assert len(images) == 2
    return images


def test_figure1_gradcam_is_drawn_over_the_image_at_full_resolution_with_a_colorbar():
    data = explanations((4, 4))
    data["maps"] = data["maps"].relu()
    data["maps"][0, 1] = 0  # an all-zero class map says so in its title
    fig = figures.draw_figure1(data, "t", images=2)
    background, cam = overlay(fig, 0, 0)
    assert background.get_array().shape == (16, 16) and cam.get_array().shape == (16, 16)
    assert 0 < cam.get_alpha() < 1
    assert cam.get_extent() == background.get_extent()
    low, high = cam.get_clim()
    assert low == 0 and high == pytest.approx(float(data["maps"][0].max()), rel=0.05)  # non-negative scale
    bars = colorbars(fig)
    assert len(bars) == 2 and all("gradcam" in b.get_ylabel() for b in bars)
    assert "all 0" in fig.axes[2].get_title() and "all 0" not in fig.axes[1].get_title()
    figures._plt().close(fig)


def test_figure1_signed_gradient_maps_use_a_diverging_scale_centred_at_zero():
    fig = figures.draw_figure1(explanations((3, 16, 16)), "t", images=1)
    _, grad = overlay(fig, 0, 2)
    low, high = grad.get_clim()
    assert low == -high and high > 0
    assert grad.get_cmap().name == figures.SIGNED_CMAP
    assert len(colorbars(fig)) == 1 and "sum over 3 channels" in colorbars(fig)[0].get_ylabel()
    figures._plt().close(fig)


def test_upsample_is_bilinear_to_the_image_size():
    ramp = np.array([[0.0, 1.0], [0.0, 1.0]])  # rises left to right
    up = figures.upsample(ramp, (8, 8))
    assert up.shape == (8, 8)
    assert np.allclose(up, up[0])  # rows identical
    assert np.all(np.diff(up[0]) >= 0) and len(np.unique(up[0].round(6))) > 2  # smooth, not 4x4 blocks
    same = np.arange(15.0).reshape(3, 5)
    assert np.array_equal(figures.upsample(same, (3, 5)), same)  # already the image's size: untouched


# Figure 2 -----------------------------------------------------------------------------------

def test_class_similarity_diagonal_is_the_share_of_nonzero_maps():
    """What Figure 2's note says of the diagonal, checked on the function that computes it."""
    maps = torch.rand(10, 3, 4, 4)
    maps[:7, 1] = 0  # class 1's map is all zero on 7 of 10 images (as Grad-CAM's ReLU can make it)
    diag = class_similarity(maps).mean(0).diagonal()
    assert diag.tolist() == pytest.approx([1.0, 0.3, 1.0])


def test_figure2_labels_its_axes_has_a_colorbar_and_explains_a_diagonal_below_one():
    data = explanations((4, 4))
    data["similarity"] = torch.full((4, 4), 0.2).fill_diagonal_(1.0)
    data["similarity"][1, 1] = 0.09
    fig = figures.draw_figure2(data, "cifar10: run")
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("class m") and ax.get_ylabel().startswith("class k")
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    assert len(colorbars(fig)) == 1
    text = texts(fig)
    assert "share of test images whose class-k map is nonzero" in text
    assert "automobile 0.09" in text and "airplane 1" not in text
    assert "ReLU" in text  # the explainer is Grad-CAM
    figures._plt().close(fig)


def test_figure2_over_seeds_says_which_seeds_it_averages():
    from introspect.report.rank_check import mean_over_seeds

    runs = {s: {**explanations((4, 4)), "similarity": torch.full((4, 4), 0.1 * (s + 1)).fill_diagonal_(1.0)} for s in (0, 1)}
    data = mean_over_seeds({**runs, 2: None})
    assert np.allclose(data["similarity"][0, 1], 0.15) and data["seeds"] == [0, 1] and data["missing"] == [2]
    fig = figures.draw_figure2(data, "cifar10: mean of seeds 0, 1")
    text = texts(fig)
    assert "averages the test-set means of the runs of seeds 0, 1 (2 runs); claim C10 ranks" in text
    assert "Not averaged (explanations missing or stale): seed 2." in text
    assert "mean over test images and seeds of" in colorbars(fig)[0].get_ylabel()
    figures._plt().close(fig)
    assert figures.seeds_note(explanations((4, 4))) == ""  # one run's matrix: no line about seeds


def test_diagonal_note_when_no_map_is_ever_zero():
    note = figures.diagonal_note(np.eye(3) * (1 - 1e-7), ["a", "b", "c"], "grad")
    assert "1 for every class" in note and "Below 1" not in note


@pytest.mark.parametrize("draw", ["figure1", "figure2", "figure3"])
def test_each_figure_is_written_as_png_and_pdf(tmp_path, draw):
    if draw == "figure3":
        paths = figures.figure3(figure3_table(), fake_results(SEEDS), tmp_path / draw)
    else:
        paths = getattr(figures, draw)(explanations((4, 4)), tmp_path / draw, "t")
    assert sorted(p.suffix for p in paths) == [".pdf", ".png"] and all(p.stat().st_size > 1000 for p in paths)


def test_explanation_titles_name_a_stand_in_and_an_explainer_other_than_the_runs():
    title = figures.explanation_title("cifar10", "digits", "resnet8 le_gradcam seed 0", "gradcam", "gradcam")
    assert title == "digits, standing in for CIFAR10: resnet8 le_gradcam seed 0, explained with Grad-CAM"
    title = figures.explanation_title("mnist", "mnist5k", "mlp1024 le_grad seed 0", "grad_input", "grad", real=True)
    assert title == ("mnist5k, real MNIST images: mlp1024 le_grad seed 0, explained with Grad*Input (the paper's "
                     "explainer for MNIST's Figures 1-2; the run trained with Grad)")
    assert figures.explanation_title("cifar10", "cifar10", "r", "gradcam", None).startswith("CIFAR10: r, explained")
