import pytest
import torch
from torch import nn

from introspect.data import DATASETS
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
