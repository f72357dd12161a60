"""introspect.evaluate: every metric on a case computed by hand, and `introspect evaluate` on finished tiny runs."""
import json
import math

import pytest
import torch
from torch import nn

from introspect.cli import main
from introspect.evaluate import (N_BINS, agreement, brier_score, calibration, deletion_insertion, infidelity,
                                 reliability)
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


def test_deletion_and_insertion_areas_by_hand():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # one image, one channel, 2x2
    # saliency = the pixel itself: removed / added in the order 4, 3, 2, 1, a quarter of the pixels per step.
    # The logits are [s, 0]: class 0's margin is s, 10 on the clean image, so each point is s / 10
    deleted = [s / 10 for s in (10, 6, 3, 1, 0)]
    inserted = [s / 10 for s in (0, 4, 7, 9, 10)]
    trapezoid = lambda ys: sum((a + b) / 2 * 0.25 for a, b in zip(ys, ys[1:]))  # noqa: E731
    deletion, insertion = deletion_insertion(SumLogit(), x, x[:, 0], torch.tensor([0]), steps=4, baseline=0.0)
    assert deletion.item() == pytest.approx(trapezoid(deleted), rel=1e-6)  # 0.3
    assert insertion.item() == pytest.approx(trapezoid(inserted), rel=1e-6)  # 0.6
    # a baseline of -3 turns the margin negative (class 1 leads): sums 10, 3, -3, -8, -12, the last
    # relative margin -1.2 clipped to -1
    deletion, _ = deletion_insertion(SumLogit(), x, x[:, 0], torch.tensor([0]), steps=4, baseline=-3.0)
    assert deletion.item() == pytest.approx(trapezoid([1.0, 0.3, -0.3, -0.8, -1.0]), rel=1e-6)


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


def test_a_model_and_its_temperature_scaled_twin_get_the_same_faithfulness():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    x = torch.randn(16, 1, 8, 8)
    classes = model(x).argmax(1)
    saliency = torch.rand(16, 8, 8)
    deletion, insertion = deletion_insertion(model, x, saliency, classes, steps=8)
    old = probability_areas(model, x, saliency, classes, steps=8)
    for temperature in (0.5, 2.0, 4.0):
        twin = Tempered(model, temperature)
        assert torch.equal(twin(x).argmax(1), classes)
        d, i = deletion_insertion(twin, x, saliency, classes, steps=8)
        assert torch.allclose(d, deletion, atol=1e-6) and torch.allclose(i, insertion, atol=1e-6)
        # the test can fail: the probability curves of the old definition change with the temperature
        assert (probability_areas(twin, x, saliency, classes, steps=8) - old).abs().mean() > 0.01


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
        "insertion_auc", "infidelity", "teacher_agreement", "similarity", "images", "explainer", "classes", "steps",
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
    assert -1 <= teacher["deletion_auc"] <= 1 and -1 <= teacher["insertion_auc"] <= 1
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
