"""What a trained run explains: the data behind the paper's Figures 1 and 2.

``explain_run`` loads a finished run, explains its test set in eval mode (Captum-exact maps) and
saves, as one torch file:

- ``similarity`` [c, c]: cos(e^k, e^m) of the class maps, averaged over every test image (Figure 2);
- ``images`` [n, C, H, W] in [0, 1], ``labels`` [n], ``predictions`` [n], ``maps`` [n, c, *map] and
  ``cos`` [n, c] (each class map's similarity to the ground-truth map) for the first n test images,
  one per class where possible (Figure 1);
- ``classes``, ``explainer``, ``run``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .checkpoint import NAME, model_weights, read_checkpoint
from .data import load_prepared, loader
from .explain import build_explainer, class_similarity, cosine_to_class
from .fileio import save_torch
from .methods.runs import build
from .train import pick_device


def load_run(run: Path, device: torch.device):
    """(config, trained model) of a run folder on ``device``, in eval mode: the model's part of its
    checkpoint only, so that runs whose method's ``setup`` adds modules (FitNets' hint stage, IE-KD)
    load without their teacher."""
    cfg = json.loads((Path(run) / "config.json").read_text())
    model, _ = build(cfg)
    model.load_state_dict(model_weights(read_checkpoint(Path(run) / NAME)["method"]))
    return cfg, model.to(device).eval()


def explain_run(run: Path, out: Path, explainer: str | None = None, examples: int = 10, device: str = "auto") -> dict:
    dev = pick_device(device)
    cfg, model = load_run(run, dev)
    if explainer is None:
        explainer = cfg["method"].get("explainer", "auto")
        if explainer == "auto":
            explainer = "gradcam" if model.conv_layer is not None else "grad"
    ex = build_explainer(explainer, model, key="--explainer")
    data = load_prepared(Path(cfg["dataset"]["path"]))
    c = len(data["classes"])
    total, n = torch.zeros(c, c, device=dev), 0
    picked: dict[int, dict] = {}
    for x, y in loader(data, "test", 250, dev).batches():
        x = x.requires_grad_(True)
        logits, _, conv = model.forward_features(x)
        maps = ex.maps(model, x, logits, conv).detach()
        total += class_similarity(maps).sum(0)
        n += len(y)
        if len(picked) >= examples:
            continue  # no host copy of labels once the examples are picked
        cos = cosine_to_class(maps, y)
        for i, label in enumerate(y.tolist()):
            if label not in picked and len(picked) < examples:
                # clones, not views: a view would keep its whole batch of maps in (device) memory
                picked[label] = {"x": x[i].detach().clone(), "y": label, "pred": int(logits[i].argmax()),
                                 "maps": maps[i].clone(), "cos": cos[i].clone()}
    mean, std = data["mean"].to(dev).view(-1, 1, 1), data["std"].to(dev).view(-1, 1, 1)
    ex_list = [picked[k] for k in sorted(picked)]
    result = {
        "run": str(run),
        "explainer": explainer,
        "classes": list(data["classes"]),
        "similarity": (total / n).cpu(),
        "images": torch.stack([(e["x"] * std + mean).clamp(0, 1) for e in ex_list]).cpu(),
        "labels": torch.tensor([e["y"] for e in ex_list]),
        "predictions": torch.tensor([e["pred"] for e in ex_list]),
        "maps": torch.stack([e["maps"] for e in ex_list]).cpu(),
        "cos": torch.stack([e["cos"] for e in ex_list]).cpu(),
    }
    save_torch(result, out)
    return result
