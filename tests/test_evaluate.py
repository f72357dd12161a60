"""introspect.evaluate: every metric on a case computed by hand, and `introspect evaluate` on finished tiny runs."""
import json
import math

import pytest
import torch
from torch import nn

from introspect.cli import main
from introspect.evaluate import (N_BINS, TIE, agreement, blank_class, brier_score, calibration, evaluate_run,
                                 faithfulness, infidelity, left_out, margin_curves, margin_of, random_maps_seed,
                                 reliability, standard_explainer, to_image)
from introspect.models.layers import Net
from introspect.provenance import tool_digest

# Five samples, three classes: (probabilities, label). Top-1 confidences 0.9, 0.8, 0.5, 0.45, 0.85 fall in
# the 15 equal-width bins 13, 12, 7, 6 and 12; correct: yes, no, yes, no, yes.
PROBS = torch.tensor([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.5, 0.3, 0.2], [0.45, 0.35, 0.2], [0.85, 0.1, 0.05]])
LABELS = torch.tensor([0, 1, 0, 1, 0])


def test_ece_by_hand():
    # bin 13: |1 - 0.9|; bin 12: accuracy 1/2, confidence 0.825, two samples; bin 7: |1 - 0.5|; bin 6: |0 - 0.45|
    expected = (0.1 + 2 * abs(0.5 - 0.825) + 0.5 + 0.45) / 5  # 0.34
    assert calibration(PROBS.log(), LABELS)["ece"] == pytest.approx(expected, abs=1e-6)


def test_reliability_bins_by_hand_and_they_give_torchmetrics_ece():
    bins = reliability(PROBS, LABELS)
    assert len(bins["count"]) == N_BINS == 15
    assert [i for i, c in enumerate(bins["count"]) if c] == [6, 7, 12, 13]
    assert bins["count"][12] == 2 and bins["correct_sum"][12] == 1
    assert bins["confidence_sum"][12] == pytest.approx(1.65)
    ece = sum(abs(a - c) for a, c, n in zip(bins["correct_sum"], bins["confidence_sum"], bins["count"]) if n) / 5
    assert ece == pytest.approx(calibration(PROBS.log(), LABELS)["ece"], abs=1e-6)


def test_a_confidence_of_one_falls_in_the_last_bin():
    bins = reliability(torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    assert bins["count"][-1] == 1 and sum(bins["count"]) == 1


def test_brier_by_hand():
    # per sample, sum over classes of (p - onehot)^2
    per_sample = [0.1**2 + 0.05**2 + 0.05**2, 0.8**2 + 0.9**2 + 0.1**2, 0.5**2 + 0.3**2 + 0.2**2,
                  0.45**2 + 0.65**2 + 0.2**2, 0.15**2 + 0.1**2 + 0.05**2]
    assert brier_score(PROBS, LABELS) == pytest.approx(sum(per_sample) / 5)  # 0.511
    assert brier_score(torch.eye(3), torch.arange(3)) == 0.0


def test_nll_by_hand():
    expected = -(math.log(0.9) + math.log(0.1) + math.log(0.5) + math.log(0.35) + math.log(0.85)) / 5
    assert calibration(PROBS.log(), LABELS)["nll"] == pytest.approx(expected, rel=1e-6)


class SumLogit(nn.Module):
    """logits = [sum of the pixels, 0]: p(class 0) = sigmoid(sum of the pixels)."""

    def forward(self, x):
        total = x.flatten(1).sum(1)
        return torch.stack([total, torch.zeros_like(total)], 1)


def trapezoid(ys, dx):
    return sum((a + b) / 2 * dx for a, b in zip(ys, ys[1:]))


def test_deletion_and_insertion_scores_by_hand():
    # two images, one channel, 2x2; the second is twice the first. Class 0's margin is the sum of the
    # pixels: 10 and 20 on the clean images, so the scale M (their median) is 15
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    x = torch.cat([x, 2 * x])
    classes = torch.tensor([0, 0])
    # the real map is the pixel itself: removed / added in the order 4, 3, 2, 1, a quarter per step;
    # the "random" map here is its reverse, 1, 2, 3, 4
    real = margin_curves(SumLogit(), x, x[:, 0], classes, steps=4)
    backwards = margin_curves(SumLogit(), x, -x[:, 0], classes, steps=4)
    assert real[:, 0].tolist() == [[10, 6, 3, 1, 0], [0, 4, 7, 9, 10]]  # deletion, insertion of image 1
    assert backwards[:, 0].tolist() == [[10, 9, 7, 4, 0], [0, 1, 3, 6, 10]]
    assert faithfulness({"real": real, "random": backwards}, torch.tensor([10.0, 20.0]), torch.tensor([True, True]),
                        4)["deletion_auc"] is None  # two images are fewer than MIN_SCORED: no score
    scores = faithfulness({"real": real, "random": backwards}, torch.tensor([10.0, 20.0]), torch.tensor([True, True]), 4,
                          min_images=1)
    area = lambda ys, k: trapezoid([k * y / 15 for y in ys], 0.25)  # noqa: E731  image k (1 or 2) in units of M
    assert scores["faithfulness_scale"] == 15.0 and scores["faithfulness_images"] == 2
    assert scores["deletion_auc"] == pytest.approx((area([10, 6, 3, 1, 0], 1) + area([10, 6, 3, 1, 0], 2)) / 2)  # (3.75 + 7.5) / 15 / 2
    assert scores["insertion_auc_random"] == pytest.approx((area([0, 1, 3, 6, 10], 1) + area([0, 1, 3, 6, 10], 2)) / 2)
    # per image real − random: deletion (3.75 − 6.25) / 15 and twice that; its mean and 90 % Student-t
    # interval (1 df: t_{0.95, 1} = 1 / tan(π / 20) = 6.313752)
    diffs = [(3.75 - 6.25) / 15, 2 * (3.75 - 6.25) / 15]
    mean, half = sum(diffs) / 2, 6.313751514675041 * abs(diffs[1] - diffs[0]) / math.sqrt(2) / math.sqrt(2)
    assert scores["deletion_auc_relative"] == pytest.approx(mean)  # -0.25
    assert scores["deletion_auc_relative_ci"] == pytest.approx([mean - half, mean + half])
    assert scores["insertion_auc_relative"] == pytest.approx(-mean)  # the mirror image: +0.25
    # nothing is clipped: a baseline of -3 turns the margin negative (class 1 leads): 10, 3, -3, -8, -12
    low = margin_curves(SumLogit(), x[:1], x[:1, 0], classes[:1], steps=4, baseline=-3.0)
    scores = faithfulness({"real": low, "random": low}, torch.tensor([10.0]), torch.tensor([True]), 4, min_images=1)
    assert scores["deletion_auc"] == pytest.approx(trapezoid([1.0, 0.3, -0.3, -0.8, -1.2], 0.25))
    assert scores["deletion_auc_relative"] == 0.0 and scores["deletion_auc_relative_ci"] is None  # one image


class Offset(nn.Module):
    """logits = [sum of the pixels, 1, 0]: the all-0 image is class 1's."""

    def forward(self, x):
        total = x.flatten(1).sum(1)
        return torch.stack([total, torch.ones_like(total), torch.zeros_like(total)], 1)


def test_ties_and_blank_class_images_are_left_out_and_counted():
    # sums 5 (class 0, scored), 1 (an exact tie with class 1), 1 + 2^-22 (a near tie: 4 float32 rounding
    # units of the largest logit), 1 + 2^-18 (not a tie) and -3 (class 1: the blank image's class)
    sums = torch.tensor([5.0, 1.0, 1.0 + 2.0 ** -22, 1.0 + 2.0 ** -18, -3.0])
    x = torch.zeros(5, 1, 2, 2)
    x[:, 0, 0, 0] = sums
    model = Offset()
    assert blank_class(model, x) == 1
    logits = model(x)
    classes = logits.argmax(1)
    ties, blank = left_out(logits, classes, blank_class(model, x))
    assert ties.tolist() == [False, True, True, False, False] and blank.tolist() == [False, False, False, False, True]
    assert margin_of(logits, classes)[2].item() == 2.0 ** -22 <= TIE * logits[2].max().item()
    # the rule is relative to the logits' size: a temperature changes no decision
    assert [m.tolist() for m in left_out(logits / 8, classes, 1)] == [ties.tolist(), blank.tolist()]
    assert blank_class(SumLogit(), x) is None  # the blank image's logits [0, 0] are a tie: no class is left out


def test_no_image_scored_gives_no_score():
    curves = torch.zeros(2, 3, 5)
    scores = faithfulness({"real": curves, "random": curves}, torch.ones(3), torch.zeros(3, dtype=torch.bool), 4)
    assert scores["faithfulness_images"] == 0 and scores["deletion_auc"] is None
    assert scores["insertion_auc_relative"] is None and scores["insertion_auc_relative_ci"] is None


class Tempered(nn.Module):
    """The same model with its logits divided by a temperature: the same predictions and saliency ranking."""

    def __init__(self, model, temperature):
        super().__init__()
        self.model, self.temperature = model, temperature

    def forward(self, x):
        return self.model(x) / self.temperature


def probability_areas(model, x, saliency, classes, steps):
    """The previous definition (RISE's): the areas under the predicted class's softmax probability."""
    b, _, h, w = x.shape
    order = saliency.flatten(1).argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(h * w).expand(b, -1))
    curves = []
    with torch.no_grad():
        for step in range(steps + 1):
            top = (rank < round(step * h * w / steps)).view(b, 1, h, w)
            probs = model(torch.where(top, torch.zeros_like(x), x)).softmax(1)
            curves.append(probs[torch.arange(b), classes])
    return torch.trapezoid(torch.stack(curves, -1), dx=1.0 / steps, dim=-1)


def scores_of(model, x, maps: dict, steps: int) -> dict:
    """faithfulness() of ``maps`` (name -> saliency [b, H, W]) of ``model``'s predicted classes, with
    the evaluation's exclusions."""
    logits = model(x).detach()
    classes = logits.argmax(1)
    ties, blank = left_out(logits, classes, blank_class(model, x))
    curves = {name: margin_curves(model, x, saliency, classes, steps) for name, saliency in maps.items()}
    return faithfulness(curves, margin_of(logits.double(), classes), ~(ties | blank), steps)


def test_a_model_and_its_temperature_scaled_twin_get_the_same_faithfulness():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    x = torch.randn(16, 1, 8, 8)
    classes = model(x).argmax(1)
    maps = {"real": torch.rand(16, 8, 8), "random": torch.rand(16, 8, 8)}
    scores = scores_of(model, x, maps, steps=8)
    old = probability_areas(model, x, maps["real"], classes, steps=8)
    for temperature in (0.5, 2.0, 4.0):
        twin = Tempered(model, temperature)
        assert torch.equal(twin(x).argmax(1), classes)
        twin_scores = scores_of(twin, x, maps, steps=8)
        assert twin_scores["faithfulness_scale"] == pytest.approx(scores["faithfulness_scale"] / temperature)
        for key in ("deletion_auc", "insertion_auc", "deletion_auc_random", "deletion_auc_relative", "insertion_auc_relative"):
            assert twin_scores[key] == pytest.approx(scores[key], abs=1e-6), key
        # the test can fail: the probability curves of RISE's definition change with the temperature
        assert (probability_areas(twin, x, maps["real"], classes, steps=8) - old).abs().mean() > 0.01


@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory):
    """CE on the real 8x8 digits, 3 epochs (about 3 s each on a CPU; test accuracy ~95 %): a CNN
    explained by Grad-CAM and the MLP explained by Grad."""
    from introspect.config import resolve
    from introspect.data import prepare
    from introspect.train import train

    root = tmp_path_factory.mktemp("digits")
    prepare("digits", root / "digits.pt", raw=root / "raw")
    runs = {}
    for model in ("cnn6", "mlp1024"):
        runs[model] = root / model
        train(resolve({"dataset": {"name": "digits", "path": str(root / "digits.pt")}, "model": model,
                       "method": "ce", "epochs": 3, "device": "cpu"}), runs[model])
    return runs


@pytest.mark.parametrize("model_name", ["cnn6", "mlp1024"])
def test_on_a_trained_model_real_maps_beat_random_ones_which_beat_inverted_ones(digits_runs, model_name, tmp_path):
    from introspect.analysis import load_run
    from introspect.data import load_prepared, loader
    from introspect.explain import build_explainer

    result = evaluate_run(digits_runs[model_name], tmp_path / "evaluation.json", images=128, device="cpu", steps=8,
                          perturbations=1)
    # the evaluation's own relative scores: real maps beat its seeded random ones on both curves
    assert result["deletion_auc_relative_ci"][1] < 0 < result["insertion_auc_relative_ci"][0]
    assert result["faithfulness_images"] + result["faithfulness_ties"] + result["faithfulness_blank"] == 128
    assert result["faithfulness_blank"] > 0 and result["random_maps_seed"] == random_maps_seed(0)
    assert evaluate_run(digits_runs[model_name], tmp_path / "again.json", images=128, device="cpu", steps=8,
                        perturbations=1)["deletion_auc_relative"] == result["deletion_auc_relative"]  # seeded

    # the same images with other random maps and with the real maps ranked backwards
    cfg, model = load_run(digits_runs[model_name], torch.device("cpu"))
    data = load_prepared(cfg["dataset"]["path"])
    subset = {**data, "tensors": {"x_test": data["tensors"]["x_test"][:128], "y_test": data["tensors"]["y_test"][:128]}}
    x, _ = next(loader(subset, "test", 128, "cpu").batches())
    x.requires_grad_(True)
    logits, _, conv = model.forward_features(x)
    maps = build_explainer(standard_explainer(model), model).maps(model, x, logits, conv).detach()
    own = maps[torch.arange(len(x)), logits.argmax(1)]
    real = to_image(own, x.shape[-2:])
    draws = [torch.rand(own.shape, generator=torch.Generator().manual_seed(seed)) for seed in (1, 2)]
    scores = scores_of(model, x.detach(), {"real": real, "random": to_image(draws[0], x.shape[-2:]),
                                           "other_random": to_image(draws[1], x.shape[-2:]), "inverted": -real}, steps=8)
    assert scores["deletion_auc_relative_ci"][1] < 0 < scores["insertion_auc_relative_ci"][0]
    assert scores["deletion_auc_inverted_relative_ci"][0] > 0 > scores["insertion_auc_inverted_relative_ci"][1]
    for score in ("deletion", "insertion"):  # random against random: about 0, a fifth of the real maps' gap at most
        low, high = scores[f"{score}_auc_other_random_relative_ci"]
        assert low < 0 < high, (score, low, high)
        assert abs(scores[f"{score}_auc_other_random_relative"]) < 0.2 * abs(scores[f"{score}_auc_relative"])


def test_infidelity_of_the_exact_gradient_of_a_linear_model_is_zero():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x = torch.randn(4, 3, 2, 2)
    classes = torch.tensor([0, 1, 2, 0])
    exact = model[1].weight[classes].detach().view(4, 3, 2, 2)  # f_k(x) - f_k(x - I) = I . w_k exactly
    assert infidelity(model, x, exact, classes).abs().max().item() < 1e-8
    assert infidelity(model, x, torch.randn(4, 3, 2, 2), classes).min().item() > 1e-4


class GapNet(Net):
    """The conv map is the input itself, then global average pooling and a linear layer (Grad-CAM's closed form)."""

    def __init__(self, weight):
        super().__init__()
        self.fc = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        self.fc.weight.data = weight
        self.identity = nn.Identity()

    @property
    def conv_layer(self):
        return self.identity

    @property
    def gap_fc(self):
        return self.fc

    def forward_features(self, x):
        conv = self.identity(x)
        return self.fc(conv.mean((2, 3))), [], conv


def test_teacher_agreement_cosine_by_hand():
    x = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]]]])  # channels A_0 = [2, 0], A_1 = [0, 1] on a 1x2 map
    teacher = GapNet(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))  # logits [1, 0.5]: top-1 class 0; map 1/2 A_0 = [1, 0]
    student = GapNet(torch.tensor([[1.0, 1.0], [0.0, 0.0]]))  # class 0's map: 1/2 (A_0 + A_1) = [1, 0.5]
    assert agreement(student, teacher, x).item() == pytest.approx(1 / math.sqrt(1.25))
    assert agreement(teacher, teacher, x).item() == pytest.approx(1.0)


KEYS = {"run", "checkpoint_sha256", "test_images", "nll", "ece", "brier", "reliability", "deletion_auc",
        "insertion_auc", "deletion_auc_random", "insertion_auc_random", "deletion_auc_relative", "insertion_auc_relative",
        "deletion_auc_relative_ci", "insertion_auc_relative_ci", "faithfulness_images", "faithfulness_min_images", "faithfulness_ties",
        "faithfulness_blank", "faithfulness_scale", "blank_class", "random_maps_seed",
        "infidelity", "teacher_agreement", "similarity", "images", "explainer", "classes", "steps",
        "baseline", "infidelity_noise_std", "infidelity_perturbations", "teacher", "teacher_checkpoint_sha256",
        "code_sha256", "pair_rank", "pairs_close"}


@pytest.fixture(scope="module")
def kd_student(tmp_path_factory, synthetic_path, teacher_run):
    from introspect.config import resolve
    from introspect.train import train

    run = tmp_path_factory.mktemp("kd") / "run"
    train(resolve({"dataset": {"name": "synthetic", "path": str(synthetic_path)}, "model": "cnn6",
                   "method": {"name": "kd", "teacher": str(teacher_run)}, "epochs": 1, "device": "cpu"}), run)
    return run


def test_introspect_evaluate_writes_every_key(teacher_run, kd_student, tmp_path, capsys):
    out = tmp_path / "teacher.json"
    assert main(["evaluate", "--run", str(teacher_run), "--out", str(out), "--images", "40"]) == 0
    teacher = json.loads(out.read_text())
    assert set(teacher) == KEYS
    assert teacher["images"] == 40 and teacher["explainer"] == "gradcam" and teacher["teacher"] is None
    assert teacher["teacher_agreement"] is None
    assert len(teacher["similarity"]) == len(teacher["classes"]) == 10
    assert sum(teacher["reliability"]["count"]) == teacher["test_images"]
    assert 0 <= teacher["ece"] <= 1 and 0 <= teacher["brier"] <= 2 and teacher["nll"] > 0
    assert teacher["faithfulness_images"] + teacher["faithfulness_ties"] + teacher["faithfulness_blank"] == 40
    scores = [teacher[k] for k in ("deletion_auc", "insertion_auc_random", "insertion_auc_relative")]
    if teacher["faithfulness_images"] >= teacher["faithfulness_min_images"]:  # a score only on enough images
        assert all(math.isfinite(v) for v in scores)
    else:
        assert all(v is None for v in scores)
    assert teacher["code_sha256"] == tool_digest("evaluate")

    # a student of another architecture (cnn6 from resnet8): agreement with its teacher, written in its run folder
    assert main(["evaluate", "--run", str(kd_student), "--images", "40"]) == 0
    student = json.loads((kd_student / "evaluation.json").read_text())
    assert set(student) == KEYS and student["teacher"] == str(teacher_run)
    assert -1 <= student["teacher_agreement"] <= 1
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["run"] == str(kd_student)


def test_evaluate_refuses_a_folder_without_a_run_and_out_with_several(tmp_path, teacher_run, capsys):
    assert main(["evaluate", "--run", str(tmp_path)]) == 2
    assert "no finished run" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(teacher_run), "--run", str(teacher_run), "--out", str(tmp_path / "x")]) == 2


def test_equal_saliency_is_ranked_in_a_random_order_not_the_rasters():
    """With a generator, pixels of equal saliency are deleted in a seeded random order: a map that is 0
    everywhere but one pixel deletes that pixel first, then the rest not top rows first."""
    import torch

    from introspect.evaluate import margin_curves

    class TopRow(torch.nn.Module):  # the margin is the mass of the first row: raster order would find it first
        def forward(self, x):
            top = x[:, 0, 0].sum(1, keepdim=True)
            return torch.cat([top, torch.zeros_like(top)], 1)

    x = torch.ones(1, 1, 8, 8)
    saliency = torch.zeros(1, 8, 8)
    saliency[0, 7, 7] = 1.0
    classes = torch.tensor([0])
    raster = margin_curves(TopRow(), x, saliency, classes, steps=8)[0, 0]
    shuffled = margin_curves(TopRow(), x, saliency, classes, steps=8, ties=torch.Generator().manual_seed(0))[0, 0]
    assert raster[1] == 1  # index order: the first eighth deleted is the salient pixel and 7 of the top row
    assert shuffled[1] >= 6  # a random order keeps most of the top row after an eighth (seed 0: see below)
    again = margin_curves(TopRow(), x, saliency, classes, steps=8, ties=torch.Generator().manual_seed(0))[0, 0]
    assert torch.equal(shuffled, again)
