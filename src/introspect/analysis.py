"""What a trained run explains: the data behind the paper's Figures 1 and 2.

``explain_run`` loads a finished run, explains its test set in eval mode (Captum-exact maps) and
saves, as one torch file:

- ``similarity`` [c, c]: cos(e^k, e^m) of the class maps, averaged over every test image (Figure 2);
- ``images`` [n, C, H, W] in [0, 1], ``labels`` [n], ``predictions`` [n], ``maps`` [n, c, *map] and
  ``cos`` [n, c] (each class map's similarity to the ground-truth map) for the first n test images,
  one per class where possible (Figure 1);
- ``classes``, ``explainer``, ``run``, and ``code_sha256``: the digest of the code that computed it
  (:func:`introspect.provenance.tool_digest`; a reader ignores a file whose digest is not today's).

Figure 2's structure, used both by ``introspect evaluate`` (each run's pair scores) and by the report
(claim C10), is ranked here once: :func:`check_pairs` and :func:`pair_scores`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import NAME, model_weights, read_checkpoint
from .data import for_run, load_prepared, loader, pick_device
from .explain import build_explainer, class_similarity, cosine_to_class
from .fileio import save_torch
from .methods.runs import build
from .provenance import tool_digest

# C10's text: the class pairs Figure 2 should put close, per paper dataset.
FIGURE2_PAIRS = {"cifar10": [("truck", "automobile"), ("dog", "cat")],
                 "mnist": [("0", "6"), ("1", "7"), ("3", "5"), ("4", "9")]}
TOP = 3  # C10: a pair passes when each class ranks in the top 3 of the other's row


def rank_in_row(sim, i: int, j: int) -> int:
    """Rank (1 = most similar) of class j in class i's row, the diagonal left out."""
    return 1 + sum(1 for k in range(len(sim)) if k not in (i, j) and sim[i][k] > sim[i][j])


@dataclass(frozen=True)
class PairCheck:
    pair: tuple[str, str]
    ranks: tuple[int, int] | None  # (rank of b in a's row, rank of a in b's row); None if not applicable

    @property
    def passes(self) -> bool:
        return self.ranks is not None and max(self.ranks) <= TOP


def check_pairs(similarity, classes: list[str], pairs: list[tuple[str, str]]) -> list[PairCheck]:
    """Each pair's two ranks in the class-by-class ``similarity`` (a pair whose classes are not all in
    ``classes`` gets ranks None)."""
    sim = [[float(v) for v in row] for row in (similarity.tolist() if hasattr(similarity, "tolist") else similarity)]
    index = {str(c): k for k, c in enumerate(classes)}
    out = []
    for a, b in pairs:
        if a in index and b in index:
            i, j = index[a], index[b]
            out.append(PairCheck((a, b), (rank_in_row(sim, i, j), rank_in_row(sim, j, i))))
        else:
            out.append(PairCheck((a, b), None))
    return out


def pair_scores(similarity, classes: list[str], pairs: dict[str, list[tuple[str, str]]] = FIGURE2_PAIRS) -> dict:
    """Figure 2's structure in one similarity matrix, over every known-similar pair (of any paper
    dataset) whose two classes it has: ``pair_rank``, the mean of the pair's two ranks
    (:func:`check_pairs`; 1 is closest), and ``pairs_close``, the share (%) of pairs that pass C10's
    top-3 check. Both None when no pair applies."""
    checks = [c for c in check_pairs(similarity, [str(c) for c in classes], [p for ps in pairs.values() for p in ps])
              if c.ranks is not None]
    if not checks:
        return {"pair_rank": None, "pairs_close": None}
    return {"pair_rank": sum(sum(c.ranks) / 2 for c in checks) / len(checks),
            "pairs_close": 100.0 * sum(c.passes for c in checks) / len(checks)}


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
    data = for_run(load_prepared(Path(cfg["dataset"]["path"])), cfg["dataset"])
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
        "code_sha256": tool_digest("analysis"),
    }
    save_torch(result, out)
    return result
