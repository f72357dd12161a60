"""Table 4-5 methods beyond plain KD: feature losses (Hint, AT, FSP) on hand-computed examples,
DML's two networks, and a run started from another run's weights (``init``)."""
import json
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from introspect.checkpoint import read_checkpoint
from introspect.config import resolve
from introspect.data import DATASETS
from introspect.methods import METHODS
from introspect.methods.distill import kl_tau
from introspect.methods.features import at_loss, attention_map, fsp_loss, fsp_matrix
from introspect.methods.peers import fresh_copy
from introspect.models import MODELS
from introspect.registry import ConfigError
from introspect.train import load_init, train

F1 = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]])  # [1, 2 channels, 1, 2]
F2 = torch.tensor([[[[1.0, 1.0]]]])  # [1, 1 channel, 1, 2]


class Stub(nn.Module):
    """A network that answers fixed logits and stage outputs (a student or a teacher)."""

    def __init__(self, logits, feats):
        super().__init__()
        self.logits, self.feats = logits, feats
        self.w = nn.Parameter(torch.ones(()))  # something to own a gradient
        self.stage_channels = [f.shape[1] for f in feats]

    def forward_features(self, x):
        return self.logits * self.w, [f * self.w for f in self.feats], None

    def forward(self, x):
        return self.forward_features(x)[0]


def test_attention_map_hand_computed():
    # mean over channels of A^2: ((1 + 9) / 2, (4 + 0) / 2) = (5, 2), then / sqrt(29)
    torch.testing.assert_close(attention_map(F1), torch.tensor([[5.0, 2.0]]) / math.sqrt(29))


def test_at_loss_hand_computed():
    expected = ((5 / math.sqrt(29) - 1 / math.sqrt(2)) ** 2 + (2 / math.sqrt(29) - 1 / math.sqrt(2)) ** 2) / 2
    assert at_loss([F1], [F2]).item() == pytest.approx(expected)
    assert at_loss([F1, F1], [F2, F2]).item() == pytest.approx(2 * expected)  # summed over stages


def test_fsp_matrix_hand_computed_and_pooling():
    # G_i0 = (F1_i . F2_0) / (h w): channel 0: (1 + 2) / 2, channel 1: (3 + 0) / 2
    torch.testing.assert_close(fsp_matrix(F1, F2), torch.tensor([[[1.5], [1.5]]]))
    big = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]]]])  # 2x2, pooled to the 1x1 of `one`: mean 4
    one = torch.tensor([[[[2.0]]], [[[0.5]]]]).view(1, 2, 1, 1)
    torch.testing.assert_close(fsp_matrix(big, one), torch.tensor([[[8.0, 2.0]]]))


def test_fsp_loss_hand_computed():
    s = [F1, F2]
    t = [F1, 2 * F2]  # teacher's G = 2 x (1.5, 1.5): difference (1.5, 1.5), squared mean 2.25
    assert fsp_loss(s, t).item() == pytest.approx(2.25)
    assert fsp_loss([F2, F2, F2], [F2, F2, F2]).item() == 0.0


def test_hint_stage_loss_hand_computed():
    student = Stub(torch.zeros(1, 3), [F2, 2 * F2])
    teacher = Stub(torch.zeros(1, 3), [F2, torch.tensor([[[[1.0, 4.0]]]])])
    method = METHODS.build("hint_stage", student, 3, teacher="unused")
    method.use_teacher(teacher)
    assert isinstance(method.regressor[0], nn.Conv2d) and method.regressor[0].in_channels == 1
    method.regressor = nn.Identity()  # hand-computable: r(v) = v
    loss, _ = method.loss(torch.zeros(1), torch.tensor([0]), 0)
    assert loss.item() == pytest.approx(((2 - 1) ** 2 + (2 - 4) ** 2) / 2)  # the 2nd stage's
    method.layer = 1
    assert method.loss(torch.zeros(1), torch.tensor([0]), 0)[0].item() == 0.0


def test_at_kd_is_kd_plus_beta_at():
    t_logits, s_logits = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[0.2, 0.1, 0.0]])
    student, teacher = Stub(s_logits, [F1]), Stub(t_logits, [torch.cat([F2, F2], 1)])
    method = METHODS.build("at_kd", student, 3, teacher="unused", beta=10.0)
    method.use_teacher(teacher)
    y = torch.tensor([2])
    loss, _ = method.loss(torch.zeros(1), y, 0)
    kd = 16 * kl_tau(t_logits, s_logits, 4.0) + 0.1 * F.cross_entropy(s_logits, y)
    assert loss.item() == pytest.approx(kd.item() + 10 * at_loss([F1], [F2]).item())


def test_fsp_needs_matching_stage_channels():
    method = METHODS.build("fsp_stage", MODELS.build("resnet8", 3, 16, 10), 10, teacher="unused")
    with pytest.raises(ConfigError, match="same stage channels"):
        method.use_teacher(MODELS.build("cnn10", 3, 16, 10))


class Logits(nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = nn.Parameter(logits)

    def forward(self, x):
        return self.logits


def test_dml_loss_hand_computed():
    method = METHODS.build("dml", Logits(torch.tensor([[0.0, math.log(3)]])), 2)
    method.peer = Logits(torch.zeros(1, 2))
    loss, logits = method.loss(None, torch.tensor([1]), 0)
    # p1 = (1/4, 3/4), p2 = (1/2, 1/2), y = 1, lambda = 0.1
    l1 = -math.log(0.75) + 0.1 * (0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75))
    l2 = -math.log(0.5) + 0.1 * (0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5))
    assert loss.item() == pytest.approx(l1 + l2)
    assert torch.equal(logits, method.model.logits)


def test_dml_each_network_gets_only_its_own_loss_gradient():
    torch.manual_seed(0)
    method = METHODS.build("dml", MODELS.build("resnet8", 3, 16, 10), 10)
    net1, net2 = method.model, method.peer
    assert not torch.equal(net1.fc.weight, net2.fc.weight)  # a fresh initialization, not a copy
    assert {id(p) for p in method.trainable_parameters()} == {id(p) for p in [*net1.parameters(), *net2.parameters()]}
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    net1.eval(), net2.eval()  # fixed BN statistics so the three forwards below agree
    loss, _ = method.loss(x, y, 0)
    grads = torch.autograd.grad(loss, [net1.fc.weight, net2.fc.weight])
    a1, a2 = net1(x), net2(x)
    own1 = F.cross_entropy(a1, y) + 0.1 * kl_tau(a2.detach(), a1, 1.0)
    own2 = F.cross_entropy(a2, y) + 0.1 * kl_tau(a1.detach(), a2, 1.0)
    torch.testing.assert_close(grads[0], torch.autograd.grad(own1, net1.fc.weight)[0])
    torch.testing.assert_close(grads[1], torch.autograd.grad(own2, net2.fc.weight)[0])


def test_fresh_copy_has_new_weights_and_same_shapes():
    model = MODELS.build("cnn6", 3, 16, 10)
    twin = fresh_copy(model)
    a, b = model.state_dict(), twin.state_dict()
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    assert not torch.equal(a["blocks.0.0.weight"], b["blocks.0.0.weight"])


def synthetic(path, **over):
    return resolve({"dataset": {"name": "synthetic", "path": str(path)}, "model": "resnet8",
                    "epochs": 1, "device": "cpu", **over})


def test_dml_run_reports_both_networks(tmp_path, synthetic_path):
    metrics = train(synthetic(synthetic_path, method="dml"), tmp_path / "dml")
    for key in ("test_acc", "val_acc", "test_err", "peer_test_acc", "peer_val_acc", "peer_test_err"):
        assert key in metrics
    import pyarrow.parquet as pq

    assert {"peer_test_acc", "peer_val_acc"} <= set(pq.read_table(tmp_path / "dml" / "history.parquet").column_names)


def test_init_starts_from_another_runs_weights(tmp_path, synthetic_path, teacher_run):
    stage = tmp_path / "stage"
    train(synthetic(synthetic_path, method={"name": "hint_stage", "teacher": str(teacher_run)}), stage)
    weights = read_checkpoint(stage / "checkpoint.pt")["method"]
    src = DATASETS.get("synthetic")
    model = MODELS.build("resnet8", src.channels, src.size, len(src.classes))
    load_init(model, stage)
    assert all(torch.equal(v, weights[f"model.{k}"]) for k, v in model.state_dict().items())
    # a student run with init records it and trains from there
    cfg = synthetic(synthetic_path, method={"name": "kd", "teacher": str(teacher_run)}, init=str(stage))
    train(cfg, tmp_path / "student")
    assert json.loads((tmp_path / "student" / "config.json").read_text())["init"] == str(stage)


def test_init_errors_are_one_line(tmp_path, teacher_run):
    with pytest.raises(ConfigError, match="is not a finished run"):
        load_init(MODELS.build("resnet8", 3, 8, 10), tmp_path)
    with pytest.raises(ConfigError, match="another architecture") as err:
        load_init(MODELS.build("resnet14", 3, 8, 10), teacher_run)
    assert "\n" not in str(err.value)


class CamNet(nn.Module):
    """A GAP->FC head over a fixed one-channel map: Grad-CAM by hand."""

    def __init__(self, conv, weights):
        super().__init__()
        self.conv = nn.Parameter(conv)
        self.fc = nn.Linear(1, len(weights), bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor(weights).view(-1, 1))
        self.conv_layer, self.gap_fc = self.fc, self.fc

    def forward_features(self, x):
        return self.fc(self.conv.mean((2, 3))), [self.conv], self.conv

    def forward(self, x):
        return self.forward_features(x)[0]


def test_e2kd_loss_hand_computed():
    teacher = CamNet(torch.tensor([[[[1.0, 2.0]]]]), [1.0, -1.0])  # logits (1.5, -1.5): top-1 class 0
    student = CamNet(torch.tensor([[[[2.0, 1.0]]]]), [1.0, 1.0])  # logits (1.5, 1.5)
    method = METHODS.build("e2kd", student, 2, teacher="unused", lam_cam=2.0)
    method.use_teacher(teacher)
    loss, _ = method.loss(torch.zeros(1), torch.tensor([1]), 0)
    # maps for class 0: teacher relu(1 * (1, 2)) / 2 = (.5, 1); student (2, 1) / 2 = (1, .5); cos = 1 / 1.25
    kd = 16 * kl_tau(torch.tensor([[1.5, -1.5]]), torch.tensor([[1.5, 1.5]]), 4.0).item()
    assert loss.item() == pytest.approx(kd + 2.0 * (1 - 0.8))


@pytest.mark.parametrize("teacher_name", ["resnet14", "cnn8"])
def test_e2kd_teacher_map_is_gradcam_of_its_top_class(teacher_name):
    from introspect.explain import explain

    torch.manual_seed(0)
    teacher = MODELS.build(teacher_name, 3, 16, 10)
    teacher.train()  # an untrained net's eval-mode maps can be all zero; train mode gives a real test
    method = METHODS.build("e2kd", MODELS.build("resnet8", 3, 16, 10), 10, teacher="unused")
    method.use_teacher(teacher)
    teacher.train()
    x = torch.randn(4, 3, 16, 16)
    logits, top, cam = method.teacher_map(x)
    expected = explain(teacher, x, "gradcam")[torch.arange(4), top]
    assert expected.abs().sum() > 0
    torch.testing.assert_close(cam, expected)
    assert torch.equal(top, logits.argmax(1)) and not cam.requires_grad


@pytest.mark.parametrize("student_name,teacher_name", [("resnet8", "resnet14"), ("cnn6", "resnet14")])
def test_e2kd_cam_term_trains_the_students_features_through_its_map(student_name, teacher_name):
    """The explanation term alone (no KD) reaches the student's conv layers, never the teacher."""
    torch.manual_seed(0)
    student, teacher = MODELS.build(student_name, 3, 16, 10), MODELS.build(teacher_name, 3, 16, 10)
    method = METHODS.build("e2kd", student, 10, teacher="unused", tau=1.0)
    method.use_teacher(teacher)
    method.kd_loss = lambda t, s, y: s.sum() * 0.0  # isolate the Grad-CAM agreement term
    loss, _ = method.loss(torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,)), 0)
    loss.backward()
    first_conv = next(p for n, p in student.named_parameters() if p.dim() == 4)
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())


@pytest.mark.parametrize("name", ["hint_stage", "at_kd"])
def test_stage_matching_needs_the_same_number_of_stages(name):
    method = METHODS.build(name, MODELS.build("resnet8", 3, 16, 10), 10, teacher="unused")
    with pytest.raises(ConfigError, match="the student has 3 stages, the teacher 4"):
        method.use_teacher(MODELS.build("cnn8", 3, 16, 10))
