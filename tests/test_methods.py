import pytest
import torch
from torch.nn import functional as F

from introspect.methods import METHODS, soft_cross_entropy
from introspect.methods.le import le_targets, permute_non_target
from introspect.methods.regularizers import smoothed_targets
from introspect.models import MODELS
from introspect.registry import ConfigError


def test_le_targets_hand_computed_three_classes():
    # ground truth class 0, alpha = 0.9; cos(e^1, e^0) = 0.5, cos(e^2, e^0) = -0.5
    # q^1 = 0.1 * 1.5 / (1.5 + 0.5) = 0.075,  q^2 = 0.1 * 0.5 / 2.0 = 0.025
    cos = torch.tensor([[1.0, 0.5, -0.5]])
    q = le_targets(cos, torch.tensor([0]), alpha=0.9)
    torch.testing.assert_close(q, torch.tensor([[0.9, 0.075, 0.025]]))
    # ground truth in the middle: cos to itself is ignored
    q = le_targets(torch.tensor([[0.0, 1.0, 1.0]]), torch.tensor([1]), alpha=0.8)
    torch.testing.assert_close(q, torch.tensor([[0.2 * 1 / 3, 0.8, 0.2 * 2 / 3]]))


def test_le_targets_degenerate_denominator_is_uniform_not_nan():
    q = le_targets(torch.tensor([[1.0, -1.0, -1.0]]), torch.tensor([0]), alpha=0.9)
    torch.testing.assert_close(q, torch.tensor([[0.9, 0.05, 0.05]]))


def test_le_targets_are_a_distribution_without_gradient():
    cos = torch.rand(5, 10, requires_grad=True) * 2 - 1
    q = le_targets(cos, torch.arange(5), alpha=0.9)
    assert not q.requires_grad
    torch.testing.assert_close(q.sum(1), torch.ones(5))
    assert torch.all(q[torch.arange(5), torch.arange(5)] == 0.9)


def test_le_permut_keeps_ground_truth_and_multiset():
    torch.manual_seed(0)
    q = torch.softmax(torch.randn(64, 10), 1)
    y = torch.randint(0, 10, (64,))
    p = permute_non_target(q, y)
    rows = torch.arange(64)
    assert torch.equal(p[rows, y], q[rows, y])
    mask = F.one_hot(y, 10).bool()
    others_q = q[~mask].view(64, 9).sort(1).values
    others_p = p[~mask].view(64, 9).sort(1).values
    assert torch.equal(others_q, others_p)
    assert not torch.equal(p, q)  # something moved


def test_label_smoothing_targets_and_loss_hand_computed():
    q = smoothed_targets(torch.tensor([2]), 4, alpha=0.7)
    torch.testing.assert_close(q, torch.tensor([[0.1, 0.1, 0.7, 0.1]]))
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    assert soft_cross_entropy(logits, q).item() == pytest.approx(torch.log(torch.tensor(4.0)).item())


def test_confidence_penalty_hand_computed():
    model = torch.nn.Identity()
    method = METHODS.build("cp", model, 2, beta=0.5)
    logits = torch.tensor([[0.0, 0.0]])  # p = (.5, .5): CE = log 2, H = log 2
    loss, _ = method.loss(logits, torch.tensor([0]), epoch=0)
    assert loss.item() == pytest.approx(0.5 * torch.log(torch.tensor(2.0)).item())


def test_le_loss_hand_computed_on_a_fixed_target():
    # loss = CE(p, q) + lambda CE(p, y); with logits 0 on 3 classes every CE is log 3
    logits = torch.zeros(1, 3)
    q = torch.tensor([[0.9, 0.075, 0.025]])
    total = soft_cross_entropy(logits, q) + 0.1 * F.cross_entropy(logits, torch.tensor([0]))
    assert total.item() == pytest.approx(1.1 * torch.log(torch.tensor(3.0)).item())


def test_le_warmup_is_plain_cross_entropy():
    torch.manual_seed(0)
    model = MODELS.build("resnet8", 3, 16, 10)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    le = METHODS.build("le", model, 10, warmup=2)
    ce = METHODS.build("ce", model, 10)
    assert le.loss(x, y, epoch=1)[0].item() == pytest.approx(ce.loss(x, y, epoch=1)[0].item())
    assert le.loss(x, y, epoch=2)[0].item() != pytest.approx(ce.loss(x, y, epoch=2)[0].item())


def test_le_gradient_treats_targets_as_labels():
    """d loss / d logits = (softmax - q) + lambda (softmax - y), per sample / b: q is a constant."""
    torch.manual_seed(0)
    model = MODELS.build("resnet8", 3, 16, 10)
    method = METHODS.build("le", model, 10, warmup=0)
    x, y = torch.randn(6, 3, 16, 16), torch.randint(0, 10, (6,))
    captured = {}
    orig = method.targets
    method.targets = lambda maps, yy: captured.setdefault("q", orig(maps, yy))
    loss, logits = method.loss(x, y, 0)
    (g,) = torch.autograd.grad(loss, logits)
    p = torch.softmax(logits.detach(), 1)
    expected = ((p - captured["q"]) + 0.1 * (p - F.one_hot(y, 10))) / len(y)
    torch.testing.assert_close(g, expected)


STAGE_METHODS = {"hint_stage", "fsp_stage"}
CONV_ONLY = STAGE_METHODS | {"at_kd", "e2kd", "iekd", "ie_dml"}  # feature maps or Grad-CAM: no MLP
RESNET_ONLY = {"ked", "ked_teacher"}  # KED's explaining form is built from a ResNet


@pytest.mark.parametrize("name", METHODS.names())
@pytest.mark.parametrize("model_name", ["resnet8", "cnn6", "mlp1024"])
def test_every_method_trains_every_model_family(name, model_name, teacher_of):
    torch.manual_seed(0)
    model = MODELS.build(model_name, 3, 16, 10)
    opts = {"warmup": 0} if "warmup" in METHODS.options(name) else {}
    if METHODS.get(name).needs_teacher:
        opts["teacher"] = str(teacher_of(name))  # a resnet8 run (for KED, its explaining form)
    refusal = ("convolutional" if name in CONV_ONLY | {"iekd_ae"} and model.conv_layer is None
               else "built from a ResNet" if name in RESNET_ONLY and not model_name.startswith("resnet")
               else "teacher's architecture" if name == "iekd_ae" and model_name != "resnet8" else None)
    if refusal:
        with pytest.raises(ConfigError, match=refusal):
            METHODS.build(name, model, 10, **opts).setup("cpu")
        return
    method = METHODS.build(name, model, 10, **opts)
    method.setup("cpu")
    method.bind_data(8)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    loss, logits = method.loss(x, y, epoch=0, **({"index": torch.arange(8)} if method.uses_index else {}))
    assert loss.dim() == 0 and torch.isfinite(loss) and logits.shape == (8, 10)
    loss.backward()
    params = {n: p for n, p in method.named_parameters() if p.requires_grad}  # iekd_ae: the teacher is frozen
    if name in STAGE_METHODS:  # a FitNets / FSP stage trains the layers up to the matched stage only
        head = [n for n in params if n.startswith(("model.fc", "model.head"))]
        assert head and all(params[n].grad is None for n in head)
        params = {n: p for n, p in params.items() if p.grad is not None}
        assert any(n.startswith(("model.stem", "model.blocks.0")) for n in params)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params.values())


def test_le_default_explainer_follows_the_paper():
    assert METHODS.build("le", MODELS.build("resnet8", 3, 16, 10), 10).explainer_name == "gradcam"
    assert METHODS.build("le", MODELS.build("mlp1024", 1, 12, 10), 10).explainer_name == "grad"


@pytest.mark.parametrize("opts,key", [({"alpha": 0.0}, "method.alpha"), ({"lam": -1.0}, "method.lam"),
                                      ({"warmup": -1}, "method.warmup"), ({"explainer": "lime"}, "method.explainer")])
def test_le_rejects_bad_options(opts, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        METHODS.build("le", MODELS.build("resnet8", 3, 16, 10), 10, **opts)
