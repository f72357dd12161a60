"""Defects that only show on an accelerator, caught on the CPU.

- On CUDA, autograd runs a backward pass (and the tensor hooks it calls) on a worker thread of its
  own, not on the thread that asked for it: an explainer must give the same maps when its
  ``torch.autograd.grad`` runs on another thread.
- ``Module.to(device)`` moves parameters and buffers only: every tensor a method keeps (its
  teacher, per-sample counts, whatever it took from a teacher run) must follow it, and a checkpoint
  read on the CPU must land on the method's device when loaded. The ``meta`` device stands in for
  the accelerator: any tensor left elsewhere is found without one.
"""
from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from introspect.explain import build_explainer, explain
from introspect.methods import METHODS
from introspect.models import MODELS, guided_backward
from test_explain import CASES, captum_maps, model_and_input  # the same-thread Captum comparisons

META = torch.device("meta")


def on_another_thread(fn, threads: list[int]):
    """``fn`` run on a fresh thread (as CUDA's autograd engine runs a backward), its result or error
    handed back to the caller; each call records the thread it ran on in ``threads``."""
    def wrapped(*args, **kwargs):
        box: dict = {}

        def work():
            threads.append(threading.get_ident())
            try:
                box["out"] = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
                box["err"] = exc

        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        if "err" in box:
            raise box["err"]
        return box["out"]
    return wrapped


@pytest.mark.parametrize("explainer,model_name", CASES)
def test_explainers_match_captum_when_the_backward_runs_on_another_thread(explainer, model_name, monkeypatch):
    model, x = model_and_input(model_name)
    threads: list[int] = []
    monkeypatch.setattr(torch.autograd, "grad", on_another_thread(torch.autograd.grad, threads))
    ours = explain(model, x, explainer)
    monkeypatch.undo()
    closed_form = explainer == "gradcam" and model.gap_fc is not None  # no backward at all
    assert closed_form or (threads and threading.get_ident() not in threads)
    ref = captum_maps(explainer, model_and_input(model_name)[0], x)
    assert ref.abs().max() > 0
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-6)


def test_guided_switch_is_off_for_the_loss_backward_on_any_thread(monkeypatch):
    """LE explains the very forward it trains on: after the guided maps, the loss backward of that
    forward (here on another thread) sees the plain gradient."""
    model, x = model_and_input("resnet8")
    explainer = build_explainer("guided_bp", model)
    x = x.requires_grad_(True)
    logits, _, conv = model.forward_features(x)
    threads: list[int] = []
    monkeypatch.setattr(torch.autograd, "grad", on_another_thread(torch.autograd.grad, threads))
    explainer.maps(model, x, logits, conv)
    (plain,) = torch.autograd.grad(logits[:, 3].sum(), x, retain_graph=True)
    monkeypatch.undo()
    assert threads
    plain_ref = captum_maps("grad", model_and_input("resnet8")[0], x.detach())[:, 3]
    torch.testing.assert_close(plain, plain_ref, rtol=1e-4, atol=1e-6)


# -- every tensor a method keeps follows it -------------------------------------------------------

def tensors_held(obj, path: str = "method", seen: set | None = None):
    """(path, tensor) of every tensor reachable from ``obj``: a module's parameters, buffers, extra
    state and plain attributes, through lists, tuples, dicts, sub-modules and this package's own
    objects (an explainer, a regulation rule), recursively."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from tensors_held(v, f"{path}[{k!r}]", seen)
    elif isinstance(obj, (list, tuple, set)):
        for i, v in enumerate(obj):
            yield from tensors_held(v, f"{path}[{i}]", seen)
    elif isinstance(obj, nn.Module):
        if type(obj).get_extra_state is not nn.Module.get_extra_state:
            yield from tensors_held(obj.get_extra_state(), f"{path}.<extra state>", seen)
        for k, v in vars(obj).items():
            yield from tensors_held(v, f"{path}.{k}", seen)
    elif type(obj).__module__.startswith("introspect") and hasattr(obj, "__dict__"):
        for k, v in vars(obj).items():
            yield from tensors_held(v, f"{path}.{k}", seen)


def off_device(method, device: torch.device) -> list[str]:
    return [f"{p} on {t.device}" for p, t in tensors_held(method) if t.device != device]


def built(name: str, teacher_of):
    """Method ``name`` on a resnet8 (the architecture of the test teachers), with the run it learns from."""
    opts = {"warmup": 0} if "warmup" in METHODS.options(name) else {}
    if METHODS.get(name).needs_teacher:
        opts["teacher"] = str(teacher_of(name))
    return METHODS.build(name, MODELS.build("resnet8", 3, 16, 10), 10, **opts)


def batch(method, device):
    x, y = torch.randn(8, 3, 16, 16, device=device), torch.randint(0, 10, (8,), device=device)
    return (x, y, 0), ({"index": torch.arange(8, device=device)} if method.uses_index else {})


@pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter")
@pytest.mark.parametrize("name", METHODS.names())
def test_a_set_up_method_moved_to_another_device_keeps_nothing_behind(name, teacher_of):
    method = built(name, teacher_of)
    method.setup("cpu")
    method.bind_data(8)
    assert not off_device(method, torch.device("cpu"))
    method.to(META)
    assert off_device(method, META) == []
    args, kw = batch(method, META)
    loss, logits = method.loss(*args, **kw)  # what the loss reads is on the device too
    assert loss.device == logits.device == META


@pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter")
@pytest.mark.parametrize("name", METHODS.names())
def test_a_cpu_checkpoint_loads_onto_the_methods_device(name, teacher_of):
    """The order train.py uses: to(device), setup(device), bind_data, then load_state_dict of a
    checkpoint read with map_location="cpu"."""
    trained = built(name, teacher_of)
    trained.setup("cpu")
    trained.bind_data(8)
    args, kw = batch(trained, "cpu")
    trained.loss(*args, **kw)  # a step, so per-sample counts are non-trivial
    state = trained.state_dict()
    assert all(t.device.type == "cpu" for t in state.values() if isinstance(t, torch.Tensor))

    method = built(name, teacher_of).to(META)
    method.setup(META)
    method.bind_data(8)
    method.load_state_dict(state)
    assert off_device(method, META) == []
    assert state.keys() == method.state_dict().keys()
    resumed = built(name, teacher_of)  # and back: the same checkpoint on the CPU restores the same values
    resumed.setup("cpu")
    resumed.bind_data(8)
    resumed.load_state_dict(state)
    for key, value in resumed.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, state[key]), key


def test_a_self_regulated_checkpoint_from_before_the_counts_buffer_still_loads():
    """Older checkpoints kept the counts as extra state (key ``_extra_state``)."""
    old = METHODS.build("srl_teacher", MODELS.build("resnet8", 3, 16, 10), 10)
    state = old.state_dict()
    state["_extra_state"] = {"counts": torch.tensor([2, 0, 1])}
    del state["counts"]
    fresh = METHODS.build("srl_teacher", MODELS.build("resnet8", 3, 16, 10), 10)
    fresh.load_state_dict(state)
    assert fresh.counts.tolist() == [2, 0, 1]
    assert "_extra_state" not in fresh.state_dict()


def test_guided_backprop_through_a_compiled_forward():
    """``compile`` (on by choice on GPUs) traces the forward: a traced hook would read the switch
    once, when traced, and the guided maps would be the plain gradient."""
    model, x = model_and_input("cnn6")
    build_explainer("guided_bp", model)
    model.compile(backend="eager")  # Dynamo's tracing without a code generator: the same graph semantics
    x = x.requires_grad_(True)
    logits = model(x)
    with guided_backward(model):
        (guided,) = torch.autograd.grad(logits[:, 2].sum(), x, retain_graph=True)
    (plain,) = torch.autograd.grad(logits[:, 2].sum(), x)
    torch.testing.assert_close(guided, captum_maps("guided_bp", model_and_input("cnn6")[0], x.detach())[:, 2], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(plain, captum_maps("grad", model_and_input("cnn6")[0], x.detach())[:, 2], rtol=1e-4, atol=1e-6)
