"""The KD family: hand-computed losses, and a teacher that is frozen and gets no gradient."""
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from introspect.methods import METHODS
from introspect.methods.distill import kl_tau, permute_non_argmax, weighted_ce
from introspect.models import MODELS
from introspect.registry import ConfigError


class Fixed(nn.Module):
    """A stand-in teacher that always answers the same logits."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits


def with_teacher(name, teacher_logits, **opts):
    method = METHODS.build(name, nn.Identity(), teacher_logits.shape[1], teacher="unused", **opts)
    method.use_teacher(Fixed(teacher_logits))
    return method


def test_kl_tau_hand_computed():
    # q = (1/4, 3/4), p = (1/2, 1/2): KL = 1/4 ln(1/2) + 3/4 ln(3/2)
    t = torch.tensor([[0.0, math.log(3)]])
    s = torch.zeros(1, 2)
    assert kl_tau(t, s, 1.0).item() == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5))
    # tau = 2 halves the teacher logits: q = (1, sqrt 3) / (1 + sqrt 3)
    q1 = 1 / (1 + math.sqrt(3))
    expected = q1 * math.log(2 * q1) + (1 - q1) * math.log(2 * (1 - q1))
    assert kl_tau(t, s, 2.0).item() == pytest.approx(expected)


def test_kd_loss_hand_computed():
    t = torch.tensor([[0.0, math.log(3)]])
    student = torch.zeros(1, 2)  # the "input" is the student's logits (model = identity)
    kd = with_teacher("kd", t, tau=2.0, lam=0.1)
    q1 = 1 / (1 + math.sqrt(3))
    kl = q1 * math.log(2 * q1) + (1 - q1) * math.log(2 * (1 - q1))
    loss, _ = kd.loss(student, torch.tensor([1]), epoch=0)
    assert loss.item() == pytest.approx(4 * kl + 0.1 * math.log(2))


def test_ban_is_kd_without_cross_entropy_and_ban_l_adds_it():
    t = torch.tensor([[2.0, 0.0, -1.0]])
    s = torch.tensor([[0.5, 0.2, 0.1]])
    y = torch.tensor([2])
    ban, _ = with_teacher("ban", t, tau=5.0).loss(s, y, 0)
    ban_l, _ = with_teacher("ban_l", t, tau=5.0).loss(s, y, 0)
    assert ban.item() == pytest.approx(25 * kl_tau(t, s, 5.0).item())
    assert ban_l.item() == pytest.approx(ban.item() + 0.1 * F.cross_entropy(s, y).item())


def test_cwtm_hand_computed():
    # teacher max probabilities 0.9 and 0.6 -> weights 0.6 and 0.4
    t = torch.log(torch.tensor([[0.9, 0.1], [0.4, 0.6]]))
    s = torch.log(torch.tensor([[0.5, 0.5], [0.2, 0.8]]))
    y = torch.tensor([0, 1])
    loss, _ = with_teacher("cwtm", t).loss(s, y, 0)
    assert loss.item() == pytest.approx(0.6 * -math.log(0.5) + 0.4 * -math.log(0.8), rel=1e-5)


def test_cwtm_permut_weights_are_a_permutation_of_the_teachers():
    torch.manual_seed(0)
    t = torch.randn(64, 10)
    m = with_teacher("cwtm_permut", t)
    conf = m.confidences(torch.zeros(64, 10))
    assert torch.equal(conf.sort().values, F.softmax(t, 1).amax(1).sort().values)
    assert not torch.equal(conf, F.softmax(t, 1).amax(1))


def test_cwtm_random_draws_confidences_in_beta_one():
    method = METHODS.build("cwtm_random", nn.Identity(), 3, beta=0.5)
    s, y = torch.randn(8, 3), torch.randint(0, 3, (8,))
    torch.manual_seed(1)
    loss, _ = method.loss(s, y, 0)
    torch.manual_seed(1)
    conf = 0.5 + 0.5 * torch.rand(8)
    assert conf.min() >= 0.5 and loss.item() == pytest.approx(weighted_ce(s, y, conf).item())
    assert not METHODS.get("cwtm_random").needs_teacher


def test_dkpp_target_keeps_argmax_and_the_multiset():
    torch.manual_seed(0)
    t = torch.randn(32, 10)
    p = permute_non_argmax(t)
    rows = torch.arange(32)
    top = t.argmax(1)
    assert torch.equal(p[rows, top], t[rows, top]) and torch.equal(p.argmax(1), top)
    assert torch.equal(p.sort(1).values, t.sort(1).values) and not torch.equal(p, t)


def test_teacher_option_is_required():
    with pytest.raises(ConfigError, match=r"method\.teacher: expected the folder of a finished teacher run"):
        METHODS.build("kd", nn.Identity(), 10)


def test_unfinished_teacher_run_is_one_line(tmp_path):
    method = METHODS.build("kd", nn.Identity(), 10, teacher=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="is not a finished run"):
        method.setup("cpu")


@pytest.mark.parametrize("name", [n for n in METHODS.names() if METHODS.get(n).needs_teacher])
def test_teacher_is_frozen_and_gradients_reach_only_the_student(name, teacher_of):
    torch.manual_seed(0)
    method = METHODS.build(name, MODELS.build("resnet8", 3, 16, 10), 10, teacher=str(teacher_of(name)))
    student = method.model  # KED trains the explaining form of the configured model
    method.setup("cpu")
    method.bind_data(8)
    method.train()
    teacher = method.teacher
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    assert not teacher.training and all(not p.requires_grad for p in teacher.parameters())
    opt = torch.optim.SGD(method.trainable_parameters(), lr=0.1)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    loss, _ = method.loss(x, y, 0, **({"index": torch.arange(8)} if method.uses_index else {}))
    loss.backward()
    opt.step()
    assert all(p.grad is None for p in teacher.parameters())
    if name == "iekd_ae":  # the stage's model is the frozen teacher itself; only the auto-encoder learns
        assert all(p.grad is None for p in student.parameters())
        assert {id(p) for p in method.trainable_parameters()} == {id(p) for m in (method.encoder, method.decoder) for p in m.parameters()}
        return
    if name.endswith("_stage"):  # FitNets / FSP stages: the layers up to the matched stage
        assert any(p.grad is not None for p in student.parameters())
    else:
        assert all(p.grad is not None for p in student.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())  # BN stats too
    assert not any(k.startswith("_teacher") or k.startswith("teacher") for k in method.state_dict())
    own = {id(p) for p in student.parameters()}
    if name == "hint_stage":  # plus FitNets' regressor, which is trained with the student
        own |= {id(p) for p in method.regressor.parameters()}
    if name == "iekd":  # plus the student's inheritance / exploration encoders
        own |= {id(p) for p in method.explorer.parameters()}
    assert {id(p) for p in method.trainable_parameters()} == own
