"""The seed papers' methods: IE-KD / IE-DML, self-regulated distillation, KED. Hand-computed losses,
where gradients go, and each chain (teacher stage -> student) trained for real on the synthetic set."""
import json
import math

import pytest
import torch
from torch import nn

from introspect.checkpoint import NAME, read_checkpoint
from introspect.config import resolve
from introspect.methods import METHODS
from introspect.methods.iekd import Explorer, exploration_loss, inheritance_loss
from introspect.methods.ked import ked_loss
from introspect.methods.self_regulated import Regulation, participates, regulated_mean
from introspect.models import MODELS, count_parameters
from introspect.models.branches import ExplainingResNet, explaining
from introspect.registry import ConfigError
from introspect.train import train

from test_distill import Fixed, with_teacher

LN = math.log


# ---- KED ----------------------------------------------------------------------------------------

def test_ked_loss_hand_computed():
    # Student branches p_S1 = (1/2, 1/2), p_S2 = (1/4, 3/4): p_S = normalized product = (1/4, 3/4).
    # Teacher branches p_T1 = (3/4, 1/4), p_T2 = (1/2, 1/2): p_T = (3/4, 1/4). y = 1, T = tau = 1.
    s_br = torch.tensor([[[0.0, 0.0]], [[0.0, LN(3)]]])
    t_br = torch.tensor([[[LN(3), 0.0]], [[0.0, 0.0]]])
    s_logits = torch.log_softmax(s_br, 2).sum(0)
    t_logits = torch.log_softmax(t_br, 2).sum(0)
    y = torch.tensor([1])
    ce = -LN(3 / 4)
    kl = 0.75 * LN(3) + 0.25 * LN(1 / 3)
    kl1 = 0.75 * LN(1.5) + 0.25 * LN(0.5)
    kl2 = 0.5 * LN(2) + 0.5 * LN(2 / 3)
    lam, mu = 0.5, 0.4
    expected = (1 - lam) * ce + lam * (1 - mu) * kl + lam * mu / 2 * (kl1 + kl2)
    got = ked_loss(s_logits, s_br, t_logits, t_br, y, lam, mu, 1.0, 1.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # lam = 1, mu = 0, T = 2: only T^2 KL(p_T^T || p_S^T); p_T^2 = (sqrt3, 1) / (sqrt3 + 1), p_S^2 reversed,
    # so KL = (a - b) ln(a / b) with a - b = (sqrt3 - 1) / (sqrt3 + 1), ln(a / b) = ln(3) / 2
    r3 = math.sqrt(3)
    got = ked_loss(s_logits, s_br, t_logits, t_br, y, 1.0, 0.0, 2.0, 1.0)
    assert got.item() == pytest.approx(4 * (r3 - 1) / (r3 + 1) * LN(3) / 2, rel=1e-6)


@pytest.mark.parametrize("name", ["resnet8", "resnet14", "resnet20", "resnet26"])
def test_explaining_resnet_is_parameter_matched_and_predicts_the_product_of_its_branches(name):
    plain = MODELS.build(name, 3, 32, 10)
    n_plain = count_parameters(plain)
    net = explaining(plain, 4)
    assert abs(count_parameters(net) - n_plain) / n_plain < 0.025
    assert count_parameters(ExplainingResNet(MODELS.build(name, 3, 32, 10), 4, net.width + 1)) > count_parameters(net)
    x = torch.randn(2, 3, 32, 32)
    logits, z, feats = net.forward_branches(x)
    assert z.shape == (4, 2, 10) and feats[-1].shape == (2, 4 * net.width, 8, 8)
    torch.testing.assert_close(logits, torch.log_softmax(z, 2).sum(0))
    product = torch.softmax(z, 2).prod(0)
    torch.testing.assert_close(torch.softmax(net(x), 1), product / product.sum(1, keepdim=True))


def test_an_explaining_resnet_is_explained_with_grad_cam_like_its_plain_form():
    """Its last conv feature map (the branches' maps side by side) is a module's output, so Grad-CAM,
    the standard explainer of `introspect evaluate`, applies to KED's runs as to every ResNet of a
    table (it was Grad: the branches' torch.cat had no module)."""
    from introspect.evaluate import standard_explainer
    from introspect.explain import build_explainer

    net = explaining(MODELS.build("resnet8", 3, 16, 10), 4).eval()
    seen = []
    net.conv_layer.register_forward_hook(lambda m, i, out: seen.append(out))
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    logits, _, conv = net.forward_features(x)
    assert seen[0] is conv and standard_explainer(net) == "gradcam"
    maps = build_explainer("gradcam", net).maps(net, x, logits, conv)
    assert maps.shape == (2, 10, 4, 4) and bool((maps >= 0).all()) and maps.abs().sum() > 0


def test_ked_refuses_a_plain_teacher(teacher_run):
    method = METHODS.build("ked", MODELS.build("resnet8", 3, 16, 10), 10, teacher=str(teacher_run))
    with pytest.raises(ConfigError, match="KED learns from a ked_teacher run with 4 branches, got a plain ResNet"):
        method.setup("cpu")


def test_ked_chain_trains_and_reports_both_parameter_counts(tmp_path, synthetic_path, ked_teacher_run):
    cfg = resolve({"dataset": {"name": "synthetic", "path": str(synthetic_path)}, "model": "resnet8",
                   "method": {"name": "ked", "teacher": str(ked_teacher_run)}, "epochs": 1, "device": "cpu"})
    metrics = train(cfg, tmp_path / "ked")
    plain = count_parameters(MODELS.build("resnet8", 3, 16, 10))
    assert metrics["params"] == count_parameters(explaining(MODELS.build("resnet8", 3, 16, 10)))
    assert metrics["params"] != plain and abs(metrics["params"] - plain) / plain < 0.025
    assert 0 <= metrics["test_acc"] <= 100


# ---- IE-KD ---------------------------------------------------------------------------------------

def test_inheritance_and_exploration_losses_hand_computed():
    f = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)  # N(f) = (0.6, 0.8)
    t = torch.tensor([4.0, 3.0]).view(1, 2, 1, 1)  # N(t) = (0.8, 0.6)
    assert inheritance_loss(f, t).item() == pytest.approx(0.2)
    assert exploration_loss(f, t).item() == pytest.approx(-0.2)
    assert exploration_loss(f, t, "cos").item() == pytest.approx(24 / 25)
    assert exploration_loss(-f, t, "cos").item() == pytest.approx(24 / 25)  # |cos|
    # Explorer: first half -> inheritance, second half -> exploration (identity encoders here)
    ex = Explorer(4, 2, lam_inh=2.0, lam_exp=3.0, form="l1")
    ex.inherit, ex.explore = nn.Identity(), nn.Identity()
    last = torch.cat([f, t], dim=1)  # the exploration half equals the factor: L_exp = 0
    assert ex.loss(last, t).item() == pytest.approx(2.0 * 0.2)


def test_iekd_autoencoder_stage_keeps_the_teacher_and_learns_only_its_encoder(iekd_ae_run, teacher_run):
    teacher = read_checkpoint(teacher_run / NAME)["method"]
    stage = read_checkpoint(iekd_ae_run / NAME)["method"]
    for k, v in teacher.items():  # the frozen teacher, BN statistics included
        torch.testing.assert_close(stage[k], v, rtol=0, atol=0)
    assert any(k.startswith("encoder.") for k in stage) and any(k.startswith("decoder.") for k in stage)
    t_metrics = json.loads((teacher_run / "metrics.json").read_text())
    s_metrics = json.loads((iekd_ae_run / "metrics.json").read_text())
    assert s_metrics["test_acc"] == t_metrics["test_acc"]


def test_iekd_learns_from_an_autoencoder_stage_only(teacher_run):
    method = METHODS.build("iekd", MODELS.build("resnet8", 3, 16, 10), 10, teacher=str(teacher_run))
    with pytest.raises(ConfigError, match="IE-KD learns from an iekd_ae run"):
        method.setup("cpu")


def test_iekd_student_loss_is_ce_plus_its_terms_and_kd_when_asked(iekd_ae_run):
    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    for kd in (False, True):
        method = METHODS.build("iekd", MODELS.build("resnet8", 3, 16, 10), 10, teacher=str(iekd_ae_run), kd=kd)
        method.setup("cpu")
        method.eval()
        loss, logits = method.loss(x, y, 0)
        t_logits, factor = method.factor(x)
        feats = method.model.forward_features(x)[1]
        task = method.kd_loss(t_logits, logits, y) if kd else nn.functional.cross_entropy(logits, y)
        torch.testing.assert_close(loss, task + method.explorer.loss(feats[-1], factor))
        assert factor.shape == (8, 32, 4, 4)  # half the teacher's 64 channels


def test_ie_dml_terms_never_reach_the_other_network():
    torch.manual_seed(0)
    method = METHODS.build("ie_dml", MODELS.build("resnet8", 3, 16, 10), 10, lam=0.0)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    (a1, f1, _), (a2, f2, _) = method.model.forward_features(x), method.peer.forward_features(x)
    code = method.autoencoders[1][0](f2[-1].detach()).detach()
    method.explorers[0].loss(f1[-1], code).backward()
    assert all(p.grad is None for p in method.peer.parameters())
    assert any(p.grad is not None for p in method.model.parameters())
    method.zero_grad(set_to_none=True)
    loss, _ = method.loss(x, y, 0)
    loss.backward()  # every part learns: both networks, both auto-encoders, both explorers
    assert all(p.grad is not None for p in method.parameters())


# ---- self-regulated distillation ------------------------------------------------------------------

def test_participation_rule_hand_computed():
    logits = torch.tensor([[2.0, 0.0, 0.0],   # right, margin (e^2 - 1) / (e^2 + 2) = 0.68
                           [0.0, 0.1, 0.0],   # right, margin (e^0.1 - 1) / (2 + e^0.1) = 0.034
                           [1.0, 0.0, 0.0]])  # wrong
    y = torch.tensor([0, 1, 2])
    assert participates(logits, y, 0.5).tolist() == [False, True, True]
    assert participates(logits, y, 0.7).tolist() == [True, True, True]
    assert participates(logits, y, 0.0).tolist() == [False, False, True]
    losses, mask = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([False, True, True])
    assert regulated_mean(losses, mask).item() == pytest.approx(2.5)
    assert regulated_mean(losses, mask, torch.tensor([1.0, 0.5, 2.0])).item() == pytest.approx((0.5 * 2 + 2 * 3) / 2)
    assert regulated_mean(losses, torch.zeros(3, dtype=torch.bool)).item() == 0.0  # max(1, sum m)
    assert Regulation("growing", 0.5, 0.01).threshold(0) == 0.0
    assert Regulation("growing", 0.5, 0.01).threshold(10) == pytest.approx(1 - math.exp(-0.1))
    assert Regulation("fixed", 0.3, 0.01).threshold(10) == 0.3


def test_self_regulated_teacher_counts_participation():
    method = METHODS.build("srl_teacher", nn.Identity(), 3, schedule="fixed", theta=0.5)
    method.bind_data(5)
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.1, 0.0], [1.0, 0.0, 0.0]], requires_grad=True)
    loss, _ = method.loss(logits, torch.tensor([0, 1, 2]), 0, index=torch.tensor([4, 0, 2]))
    ce = nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2]), reduction="none")
    assert loss.item() == pytest.approx(((ce[1] + ce[2]) / 2).item())
    assert method.counts.tolist() == [1, 0, 1, 0, 0]
    assert method.run_metrics()["samples_used"] == pytest.approx(40.0)
    state = method.state_dict()
    fresh = METHODS.build("srl_teacher", nn.Identity(), 3)
    fresh.load_state_dict(state)  # the counts travel with the checkpoint
    assert fresh.counts.tolist() == [1, 0, 1, 0, 0]


@pytest.mark.parametrize("name", ["srl_significance", "srl_regulated", "srl_hybrid"])
def test_self_regulated_students_hand_computed(name):
    t = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    s = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.1, 0.0], [1.0, 0.0, 0.0]])  # m = (F, T, T) at theta 0.5
    y = torch.tensor([0, 1, 2])
    method = with_teacher(name, t, schedule="fixed", theta=0.5)
    method.significance = torch.tensor([0.0, 1.0, 2.0])  # teacher counts (0, 1, 2): mean 1; sample 0 never used
    method.bind_data(3)
    loss, _ = method.loss(s, y, 0, index=torch.arange(3))
    per = [method.kd_loss(t[i:i + 1], s[i:i + 1], y[i:i + 1]).item() for i in range(3)]
    expected = {"srl_significance": (0 * per[0] + 1 * per[1] + 2 * per[2]) / 3,
                "srl_regulated": (per[1] + per[2]) / 2,
                "srl_hybrid": (1 * per[1] + 2 * per[2]) / 2}[name]
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    used = {"srl_significance": [0, 1, 1], "srl_regulated": [0, 1, 1], "srl_hybrid": [0, 1, 1]}[name]
    assert method.counts.tolist() == used
    assert method.run_metrics()["samples_used"] == pytest.approx(200 / 3)


def test_self_regulated_students_need_a_self_regulated_teacher(teacher_run):
    method = METHODS.build("srl_hybrid", MODELS.build("resnet8", 3, 16, 10), 10, teacher=str(teacher_run))
    with pytest.raises(ConfigError, match="is not an srl_teacher run"):
        method.setup("cpu")


def test_self_regulated_chain_trains_and_reports_samples_used(tmp_path, synthetic_path, srl_teacher_run):
    counts = read_checkpoint(srl_teacher_run / NAME)["method"]["counts"]
    teacher_metrics = json.loads((srl_teacher_run / "metrics.json").read_text())
    assert counts.dtype == torch.long and counts.min() >= 0 and counts.max() <= 1  # one epoch
    assert teacher_metrics["samples_used"] == pytest.approx(100.0 * (counts > 0).double().mean().item())
    cfg = resolve({"dataset": {"name": "synthetic", "path": str(synthetic_path)}, "model": "resnet8",
                   "method": {"name": "srl_significance", "teacher": str(srl_teacher_run)}, "epochs": 1, "device": "cpu"})
    metrics = train(cfg, tmp_path / "student")
    assert metrics["samples_used"] == pytest.approx(teacher_metrics["samples_used"])  # the teacher's zeros drop out
