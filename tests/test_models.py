import pytest
import torch
from torch import nn

from introspect.config import family
from introspect.data import DATASETS
from introspect.explain import EXPLAINERS
from introspect.methods import METHODS
from introspect.models import MODELS, count_parameters

# TAKD's and the LE paper's counts for CIFAR10 (3 channels, c = 10); MLP1024 on MNIST.
PAPER_COUNTS = {
    ("resnet8", "cifar10"): 78_042,
    ("resnet14", "cifar10"): 175_258,
    ("resnet20", "cifar10"): 272_474,
    ("resnet26", "cifar10"): 369_690,
    ("cnn6", "cifar10"): 82_778,
    ("cnn8", "cifar10"): 327_962,
    ("cnn10", "cifar10"): 2_487_850,
    ("mlp1024", "mnist"): 1_863_690,
}


def build(name, dataset="synthetic", **kw):
    src = DATASETS.get(dataset)
    return MODELS.build(name, src.channels, src.size, len(src.classes), **kw)


@pytest.mark.parametrize("name,dataset", sorted(PAPER_COUNTS))
def test_parameter_counts_match_the_papers(name, dataset):
    assert count_parameters(build(name, dataset)) == PAPER_COUNTS[(name, dataset)]


@pytest.mark.parametrize("dataset", ["cifar10", "mnist", "digits", "synthetic"])
@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_runs_on_every_dataset_shape(name, dataset):
    src = DATASETS.get(dataset)
    model = build(name, dataset).eval()
    x = torch.randn(2, src.channels, src.size, src.size)
    logits, stages, conv = model.forward_features(x)
    assert logits.shape == (2, len(src.classes))
    assert torch.equal(logits, model(x))
    assert len(stages) >= 2 and all(s.shape[0] == 2 for s in stages)
    if model.conv_layer is None:
        assert conv is None
    else:  # the exposed map is the output of the exposed layer
        seen = []
        handle = model.conv_layer.register_forward_hook(lambda m, i, o: seen.append(o))
        model(x)
        handle.remove()
        assert conv.dim() == 4 and torch.equal(seen[-1], conv)


@pytest.mark.parametrize("name", MODELS.names())
def test_dropout_option(name):
    plain, dropped = build(name), build(name, dropout=0.5)
    assert not any(isinstance(m, nn.Dropout) for m in plain.modules())
    drops = [m for m in dropped.modules() if isinstance(m, nn.Dropout)]
    assert drops and all(m.p == 0.5 for m in drops)
    assert count_parameters(plain) == count_parameters(dropped)


def test_resnet_state_dict_has_no_aliases():
    keys = build("resnet8").state_dict().keys()
    assert "fc.weight" in keys and not any(k.startswith(("gap_fc", "conv_layer")) for k in keys)


# The model contract (introspect.models.layers.Net), checked for every registered model: a model file
# added to src/introspect/models/ is collected here with no edit of this file.

def _stages_and_conv(name):
    model = build(name).eval()
    x = torch.randn(2, 3, 16, 16)
    return model, x, model.forward_features(x)


@pytest.mark.parametrize("name", MODELS.names())
def test_stage_channels_are_the_channels_of_the_stage_outputs(name):
    model, _, (_, stages, conv) = _stages_and_conv(name)
    if model.stage_channels is None:
        assert conv is None or all(s.dim() == 2 for s in stages)
    else:
        assert [s.dim() for s in stages] == [4] * len(stages)
        assert [s.shape[1] for s in stages] == list(model.stage_channels)


@pytest.mark.parametrize("name", MODELS.names())
def test_every_relu_is_the_switchable_one_guided_backprop_needs(name):
    from introspect.models.layers import ReLU

    plain = [n for n, m in build(name).named_modules() if isinstance(m, nn.ReLU) and not isinstance(m, ReLU)]
    assert plain == [], f"{name}: use introspect.models.layers.ReLU, not nn.ReLU, at {plain}"


@pytest.mark.parametrize("name", MODELS.names())
def test_gap_fc_is_what_the_conv_map_feeds_through_global_average_pooling(name):
    """Grad-CAM's closed form (gap_fc) equals Grad-CAM by autograd; a model without gap_fc is left to autograd."""
    from introspect.explain import explain

    model, x, (logits, _, conv) = _stages_and_conv(name)
    if model.gap_fc is None:
        return
    assert conv is not None and torch.allclose(model.gap_fc(conv.mean((2, 3))), logits, atol=1e-5)
    closed = explain(model, x, "gradcam")
    xg = x.clone().requires_grad_(True)
    logits, _, conv = model.forward_features(xg)
    grads = torch.stack([torch.autograd.grad(logits[:, k].sum(), conv, retain_graph=True)[0]
                         for k in range(logits.shape[1])], 1)
    auto = torch.relu(torch.einsum("bkj,bjhw->bkhw", grads.mean((3, 4)), conv)).detach()
    torch.testing.assert_close(closed, auto, rtol=1e-4, atol=1e-6)


# A model of a family other than the paper's (resnet, cnn, mlp, which tests/test_methods.py and
# tests/test_explain.py run with every method and explainer): every method and every explainer on
# it, here. A method or explainer it cannot serve must refuse it in one line naming both.
USER_MODELS = [m for m in MODELS.names() if family(m) not in ("resnet", "cnn", "mlp")]  # none shipped


@pytest.mark.parametrize("name,method", [(n, m) for n in USER_MODELS for m in METHODS.names()])
def test_every_method_trains_a_user_model_or_refuses_it_in_one_line(name, method, synthetic_path, teacher_of):
    from introspect.config import resolve
    from introspect.methods.runs import build as build_run, refusals
    from introspect.registry import ConfigError

    opts = {"warmup": 0} if "warmup" in METHODS.options(method) else {}
    if METHODS.get(method).needs_teacher:
        opts["teacher"] = str(teacher_of(method))
    cfg = resolve({"dataset": {"name": "synthetic", "path": str(synthetic_path)}, "model": name,
                   "method": {"name": method, **opts}, "device": "cpu"})
    try:
        model, m = build_run(cfg)
        with refusals(cfg):  # as the training loop sets a method up
            m.setup("cpu")
    except ConfigError as exc:
        text = str(exc)
        assert "\n" not in text and method in text and name in text, text
        return
    m.bind_data(8)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    loss, logits = m.loss(x, y, epoch=0, **({"index": torch.arange(8)} if m.uses_index else {}))
    assert loss.dim() == 0 and torch.isfinite(loss) and logits.shape == (8, 10)
    loss.backward()
    assert any(p.grad is not None for p in m.parameters())


@pytest.mark.parametrize("name,explainer", [(n, e) for n in USER_MODELS for e in EXPLAINERS.names()])
def test_every_explainer_explains_a_user_model_or_refuses_it_in_one_line(name, explainer):
    from introspect.explain import build_explainer, explain
    from introspect.registry import ConfigError

    model, x, (_, _, conv) = _stages_and_conv(name)
    if EXPLAINERS.get(explainer).needs_conv and model.conv_layer is None:
        with pytest.raises(ConfigError, match=explainer):
            build_explainer(explainer, model, "method.explainer")
        return
    maps = explain(model, x, explainer)
    assert maps.shape[:2] == (2, 10) and torch.isfinite(maps).all()
