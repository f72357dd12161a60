"""GPU acceptance in one command: `pytest -v tests/test_gpu_acceptance.py` on a CUDA machine.

What a GPU adds to what the CPU tests already check, each on ``DEVICE``:

- every method trains every model family for a few steps in fp32 and in bf16 autocast (with the
  training loop's channels_last layout): finite losses, fp32 weights, every tensor of the method
  (model, its own parts, the frozen teacher, an encoder, per-sample counts) on the device;
- the explainers equal Captum's in eval mode (TF32 off; rtol 1e-4, atol 1e-5);
- LE's targets (Eq. 6) computed under bf16 autocast agree with fp32: max |q_bf16 - q_fp32| <= 1e-2
  (a tenth of the 1 - alpha = 0.1 mass LE spreads over the other classes), mean <= 1e-3;
- a `introspect train` process killed after its first checkpoint and rerun resumes (no epoch 1
  again) and ends within tolerance of an uninterrupted run: CUDA kernels are not bit-reproducible
  (atomics in convolution backward), so |train loss difference| <= 10% and |test accuracy
  difference| <= 10 points (the CPU twin in test_train.py is bit-identical);
- `introspect bench --device DEVICE --json FILE` writes a file that `introspect plan --scale paper
  --bench FILE` turns into finite, positive GPU-hours;
- a shrunk DAG runs through `workflow/profiles/gpu` (each job claims a GPU slot);
- a claimed GPU is the one torch sees.

Every test skips only for lack of CUDA. The bodies do not depend on the device: they were
executed on the CPU by setting ``DEVICE = "cpu"`` (the CPU-only checks of the same properties,
refusals and bit-identical resume included, live in test_methods.py, test_explain.py,
test_train.py, test_plan.py, test_faults.py and test_gpu.py).
"""
from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from introspect.methods import METHODS
from introspect.models import MODELS
from introspect.data import speed_settings
from test_explain import CASES, captum_maps, model_and_input
from test_faults import command, tiny
from test_methods import CONV_ONLY, RESNET_ONLY

DEVICE = "cuda"
pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs CUDA")

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
MODEL_FAMILIES = ("resnet8", "cnn6", "mlp1024")
STEPS = 3


def applicable(method: str, model: str) -> bool:
    """The (method, model) pairs test_methods.py trains rather than refuses."""
    conv = not model.startswith("mlp")
    return not ((method in CONV_ONLY | {"iekd_ae"} and not conv) or (method in RESNET_ONLY and not model.startswith("resnet"))
                or (method == "iekd_ae" and model != "resnet8"))


def tensors_of(obj, seen: set[int] | None = None):
    """Every tensor reachable from a method: parameters, buffers, extra state, and what it keeps
    outside them (a frozen teacher in a list, an encoder, per-sample counts, explainer state)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from tensors_of(v, seen)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from tensors_of(v, seen)
    elif isinstance(obj, torch.nn.Module) or type(obj).__module__.startswith("introspect"):
        yield from tensors_of(vars(obj), seen)


CASES_METHODS = [(name, model) for name in METHODS.names() for model in MODEL_FAMILIES if applicable(name, model)]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("name,model_name", CASES_METHODS)
def test_every_method_trains_on_the_device(name, model_name, precision, teacher_of):
    device = torch.device(DEVICE)
    bf16, channels_last = speed_settings({"precision": precision, "channels_last": "auto"}, device)
    layout = torch.channels_last if channels_last and not model_name.startswith("mlp") else torch.contiguous_format
    torch.manual_seed(0)
    model = MODELS.build(model_name, 3, 16, 10)
    opts = {"warmup": 0} if "warmup" in METHODS.options(name) else {}
    if METHODS.get(name).needs_teacher:
        opts["teacher"] = str(teacher_of(name))  # trained on the CPU; setup loads it onto the device
    method = METHODS.build(name, model, 10, **opts).to(device, memory_format=layout)
    method.setup(device)
    method.bind_data(64)
    opt = torch.optim.SGD(method.trainable_parameters(), lr=0.01, momentum=0.9)
    for step in range(STEPS):
        x = torch.randn(8, 3, 16, 16, device=device).contiguous(memory_format=layout)
        y = torch.randint(0, 10, (8,), device=device)
        index = torch.arange(8 * step, 8 * step + 8, device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, logits = method.loss(x, y, epoch=0, **({"index": index} if method.uses_index else {}))
        assert torch.isfinite(loss) and logits.shape == (8, 10), (step, loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    found = list(tensors_of(method))
    assert found and all(t.device.type == device.type for t in found), {t.device for t in found}
    assert all(p.dtype == torch.float32 for p in method.parameters())  # autocast never casts the weights


@pytest.fixture
def exact_fp32():
    """TF32 off: the comparison is of the algorithm, not of TF32's 10-bit mantissa."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("explainer,model_name", CASES)
def test_explainers_match_captum_on_the_device(explainer, model_name, exact_fp32):
    from introspect.explain import explain

    model, x = model_and_input(model_name)
    model, x = model.to(DEVICE), x.to(DEVICE)
    ours = explain(model, x, explainer)
    ref = captum_maps(explainer, model_and_input(model_name)[0].to(DEVICE), x)
    assert ours.device.type == ref.device.type == torch.device(DEVICE).type
    assert ref.abs().max() > 0
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("model_name,explainer", [("resnet8", "gradcam"), ("resnet8", "grad"), ("cnn6", "gradcam"),
                                                  ("cnn6", "grad_input"), ("mlp1024", "grad"), ("resnet8", "guided_bp")])
def test_le_targets_under_bf16_agree_with_fp32(model_name, explainer):
    torch.manual_seed(0)
    model = MODELS.build(model_name, 3, 32, 10)
    method = METHODS.build("le", model, 10, warmup=0, explainer=explainer).to(DEVICE).eval()  # eval: same BN both times
    x, y = torch.randn(64, 3, 32, 32, device=DEVICE), torch.randint(0, 10, (64,), device=DEVICE)
    targets = []
    real = method.targets
    for bf16 in (False, True):
        method.targets = lambda maps, yy: targets.append(real(maps, yy)) or targets[-1]
        with torch.autocast(torch.device(DEVICE).type, dtype=torch.bfloat16, enabled=bf16):
            method.loss(x, y, 0)
    q32, q16 = targets
    assert q16.dtype == torch.float32 and torch.isfinite(q16).all()
    diff = (q16 - q32).abs()
    assert diff.max() <= 1e-2 and diff.mean() <= 1e-3, (diff.max().item(), diff.mean().item())


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "introspect.cli", *args]


def test_killed_run_resumes_within_tolerance(tmp_path, synthetic_path):
    common = ["train", "--dataset", "synthetic", "--model", "resnet8", "--method", "le", "--epochs", "4",
              "--device", DEVICE, "--set", f"dataset.path={synthetic_path}", "--set", "batch_size=16",
              "--set", "optim.lr=0.02", "--set", "method.warmup=1", "--set", "method.explainer=gradcam"]
    whole = subprocess.run(cli(*common, "--out", str(tmp_path / "whole")), capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr[-2000:]
    run = tmp_path / "killed"
    proc = subprocess.Popen(cli(*common, "--out", str(run)), stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # one progress line per epoch, after its checkpoint
            if "epoch 1/4" in line:
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL and not (run / "metrics.json").exists()
    resumed = subprocess.run(cli(*common, "--out", str(run)), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert re.search(r"resuming after epoch [123]", resumed.stderr) and "epoch 1/4" not in resumed.stderr
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (run, tmp_path / "whole"))
    assert a["epochs"] == b["epochs"] == 4
    assert abs(a["train_loss"] - b["train_loss"]) <= 0.1 * b["train_loss"], (a, b)
    assert abs(a["test_acc"] - b["test_acc"]) <= 10, (a, b)


def test_bench_file_turns_into_paper_gpu_hours(tmp_path):
    bench = tmp_path / "bench.json"
    out = subprocess.run([str(BIN / "introspect"), "bench", "--device", DEVICE, "--models", "resnet14,resnet8,cnn8,mlp1024",
                          "--batch-size", "64", "--steps", "2", "--loader-images", "2000", "--json", str(bench)],
                         env=ENV, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    written = json.loads(bench.read_text())
    assert written["batch_size"] == 64 and all(ms > 0 for steps in written["step_ms"].values() for ms in steps.values())
    plan = subprocess.run([str(BIN / "introspect"), "plan", "--params", str(ROOT / "params.yaml"), "--scale", "paper",
                           "--bench", str(bench)], env=ENV, capture_output=True, text=True)
    assert plan.returncode == 0, plan.stderr[-2000:]
    total = next(line for line in plan.stdout.splitlines() if line.startswith("total (each run once)"))
    hours = float(total.split()[-1])
    assert math.isfinite(hours) and hours > 0, total
    assert f"({written['device']}, batch 64)" in plan.stdout


def test_shrunk_dag_through_the_gpu_profile(tmp_path):
    work = tiny(tmp_path / "w", {"ce": {"method": "ce"}, "le_gradcam": {"method": "le", "set": {"method.explainer": "gradcam"}}})
    out = subprocess.run(command(work, "--profile", str(ROOT / "workflow" / "profiles" / "gpu"), "all"),
                         env=ENV, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for variant in ("ce", "le_gradcam"):
        metrics = json.loads((work / f"results/digits/resnet8/{variant}/seed0/metrics.json").read_text())
        assert math.isfinite(metrics["train_loss"]) and metrics["epochs"] == 1
    assert (work / "reports" / "index.md").exists()
    if DEVICE == "cuda":  # every train job claimed a GPU slot (src/introspect/gpu.py)
        assert (work / ".introspect" / "gpu-locks" / "slot0.lock").exists()


def test_claimed_gpu_is_the_one_torch_sees(tmp_path):
    if DEVICE != "cuda":
        pytest.skip("claims a GPU: nothing to check on the CPU")
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["INTROSPECT_GPU_LOCKS"] = str(tmp_path / "locks")
    code = ("from introspect.gpu import claim; import torch; g = claim(); "
            "print(g, torch.cuda.device_count(), torch.zeros(1, device='cuda').device)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    gpu, count, device = out.stdout.split()
    assert gpu == "0" and count == "1" and device == "cuda:0"
