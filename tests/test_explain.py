import pytest
import torch
from captum.attr import GuidedBackprop, InputXGradient, LayerGradCam, Saliency

from introspect.explain import EXPLAINERS, build_explainer, class_similarity, cosine_to_class, explain
from introspect.models import MODELS
from introspect.registry import ConfigError

C = 10


def model_and_input(name, seed=0):
    torch.manual_seed(seed)
    channels, size = (1, 12) if name == "mlp1024" else (3, 16)
    model = MODELS.build(name, channels, size, C).eval()
    # give BatchNorm non-trivial running statistics so eval mode is not the identity
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model, torch.randn(4, channels, size, size)


def captum_maps(name, model, x):
    out = []
    for k in range(C):
        if name == "grad":
            a = Saliency(model).attribute(x, target=k, abs=False)
        elif name == "grad_input":
            a = InputXGradient(model).attribute(x, target=k)
        elif name == "guided_bp":
            a = GuidedBackprop(model).attribute(x, target=k)
        else:
            a = LayerGradCam(model, model.conv_layer).attribute(x, target=k, relu_attributions=True)[:, 0]
        out.append(a.detach())
    return torch.stack(out, 1)


CASES = [(e, m) for e in EXPLAINERS.names() for m in ("resnet8", "cnn6", "mlp1024")
         if not (EXPLAINERS.get(e).needs_conv and m == "mlp1024")]


@pytest.mark.parametrize("explainer,model_name", CASES)
def test_matches_captum_for_every_class_in_eval_mode(explainer, model_name):
    model, x = model_and_input(model_name)
    ours = explain(model, x, explainer)
    ref = captum_maps(explainer, model_and_input(model_name)[0], x)  # a fresh copy: no hooks of ours
    assert ours.shape == ref.shape == (x.shape[0], C, *ref.shape[2:])
    assert ref.abs().max() > 0
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-6)


def test_gradcam_closed_form_equals_autograd():
    model, x = model_and_input("resnet8")
    closed = explain(model, x, "gradcam")
    x = x.requires_grad_(True)
    logits, _, conv = model.forward_features(x)
    grads = torch.stack([torch.autograd.grad(logits[:, k].sum(), conv, retain_graph=True)[0] for k in range(C)], 1)
    auto = torch.relu(torch.einsum("bkj,bjhw->bkhw", grads.mean((3, 4)), conv)).detach()
    torch.testing.assert_close(closed, auto, rtol=1e-5, atol=1e-7)


def test_guided_bp_leaves_the_training_gradient_alone():
    model, x = model_and_input("resnet8")
    build_explainer("guided_bp", model)  # switches the guided hooks on
    x = x.requires_grad_(True)
    logits, _, conv = model.forward_features(x)
    EXPLAINERS.get("guided_bp")().maps(model, x, logits, conv)
    (plain,) = torch.autograd.grad(logits[:, 3].sum(), x, retain_graph=True)
    ref = Saliency(model_and_input("resnet8")[0]).attribute(x.detach(), target=3, abs=False)
    torch.testing.assert_close(plain, ref, rtol=1e-4, atol=1e-6)


def test_maps_carry_no_gradient_unless_asked():
    model, x = model_and_input("resnet8")
    for name in EXPLAINERS.names():
        assert not explain(model, x, name).requires_grad
    x = x.requires_grad_(True)
    logits, _, conv = model.forward_features(x)
    kept = EXPLAINERS.get("gradcam")().maps(model, x, logits, conv, create_graph=True)
    assert kept.requires_grad


def test_gradcam_on_mlp_is_a_config_error():
    model, _ = model_and_input("mlp1024")
    with pytest.raises(ConfigError, match=r"method\.explainer: gradcam needs a convolutional model; choices for this model: grad, grad_input, guided_bp"):
        build_explainer("gradcam", model, key="method.explainer")


def test_zero_maps_give_similarity_zero_not_nan():
    maps = torch.zeros(2, 3, 4, 4)
    maps[0, 1] = 1.0  # sample 0: class 1 non-zero, ground truth class 0 is a zero map
    cos = cosine_to_class(maps, torch.tensor([0, 2]))
    assert torch.equal(cos, torch.zeros(2, 3))
    sim = class_similarity(maps)
    assert torch.isfinite(sim).all() and sim[0, 1, 1] == pytest.approx(1.0) and sim[0, 0, 1] == 0


def test_cosine_hand_computed():
    maps = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0]]])  # b=1, c=3, 2-pixel maps
    cos = cosine_to_class(maps, torch.tensor([0]))
    torch.testing.assert_close(cos, torch.tensor([[1.0, 2 ** -0.5, -1.0]]))


def test_train_mode_maps_for_every_explainer_have_all_classes():
    for name in EXPLAINERS.names():
        model, x = model_and_input("resnet8")
        maps = explain(model.train(), x, name)
        assert maps.shape[:2] == (4, C) and torch.isfinite(maps).all()
