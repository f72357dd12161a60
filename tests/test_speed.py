"""The GPU speed options (bf16 autocast, channels_last, torch.compile) keep the recipe and the results'
meaning: checked on the CPU where the CPU supports them, on CUDA where there is one."""
import math

import pytest
import torch

from introspect.checkpoint import read_checkpoint
from introspect.config import resolve
from introspect.data import speed_settings
from introspect.train import train


def cfg_for(path, **over):
    return resolve({"dataset": {"name": "synthetic", "path": str(path)}, "model": "resnet8", "epochs": 2,
                    "device": "cpu", **over})


def test_auto_is_off_on_the_cpu():
    assert speed_settings({"precision": "auto", "channels_last": "auto"}, torch.device("cpu")) == (False, False)
    assert speed_settings({"precision": "bf16", "channels_last": "on"}, torch.device("cpu")) == (True, True)


@pytest.mark.parametrize("method", ["ce", "le", "kd"])
def test_bf16_channels_last_trains_with_fp32_weights(tmp_path, synthetic_path, teacher_run, method):
    m = {"name": method} | ({"warmup": 0, "explainer": "grad"} if method == "le" else {})
    m |= {"teacher": str(teacher_run)} if method == "kd" else {}
    metrics = train(cfg_for(synthetic_path, method=m, precision="bf16", channels_last="on"), tmp_path / "run")
    assert math.isfinite(metrics["train_loss"]) and metrics["test_acc"] >= 0
    state = read_checkpoint(tmp_path / "run" / "checkpoint.pt")["method"]
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())


def test_channels_last_computes_the_same_step():
    """One training step of the same weights on the same batch, in either layout: same loss and grads."""
    from introspect.methods import METHODS
    from introspect.models import MODELS

    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    base = MODELS.build("resnet8", 3, 16, 10)
    results = []
    for layout in (torch.contiguous_format, torch.channels_last):
        model = MODELS.build("resnet8", 3, 16, 10)
        model.load_state_dict(base.state_dict())
        method = METHODS.build("le", model, 10, warmup=0).to(memory_format=layout)
        loss, _ = method.loss(x.contiguous(memory_format=layout), y, 0)
        loss.backward()
        results.append((loss.item(), [p.grad.clone() for p in model.parameters()]))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-5)
    for g0, g1 in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(g0, g1, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_compile_and_bf16_on_cuda(tmp_path, synthetic_path):
    cfg = cfg_for(synthetic_path, device="cuda", compile=True)
    assert speed_settings(cfg, torch.device("cuda"))[1]
    metrics = train(cfg, tmp_path / "run")
    assert math.isfinite(metrics["train_loss"])
