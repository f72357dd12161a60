"""Beyond accuracy: how calibrated a finished run is and how good its explanations are (issue 15).

``evaluate_run`` loads a run's final checkpoint in eval mode and writes ``evaluation.json`` beside it:

- calibration on the whole test split: negative log-likelihood (torch's ``cross_entropy``), expected
  calibration error (top-label, 15 equal-width bins, L1: torchmetrics' ``multiclass_calibration_error``)
  and the Brier score (sum over classes of (p_k - onehot_k)^2, mean over samples; :func:`brier_score`),
  with the bins of a reliability diagram (:func:`reliability`);
- explanation quality on a fixed subset, the first ``images`` test images (the same for every run),
  explained with the model's standard explainer (Grad-CAM on a CNN, Grad on the MLP, as in the LE
  paper) so every method of a table is measured with the same one:

  - faithfulness of the map of the predicted class: the areas under the deletion and insertion curves
    (Petsiuk et al. 2018, RISE, Sec. 4.1), read on the predicted class's logit margin relative to the
    clean image's, so that they measure the map and not the model's confidence (:func:`deletion_insertion`),
    and Captum's infidelity
    (Yeh et al. 2019; ``captum.metrics.infidelity``, Gaussian perturbations, optimally rescaled
    attributions);
  - for a student (``method.teacher``): the cosine between its Grad-CAM and its teacher's for the
    teacher's top-1 class (the agreement e2KD trains for, Parchami-Araghi et al. 2024);
  - the class-by-class explanation similarity averaged over the subset (the paper's Figure 2), from
    which the report checks whether known-similar classes rank close (claim C10's test), and its pair
    scores (:func:`introspect.analysis.pair_scores`).

``checkpoint_sha256`` records which checkpoint was evaluated and ``code_sha256`` the code that evaluated
it (:func:`introspect.provenance.tool_digest`: this module, every module of the package it imports,
and the versions of torch, captum and torchmetrics): the report ignores an evaluation.json whose run
was retrained since or whose code changed, and the workflow's evaluate job has the digest as a param,
so it runs again.
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F

from .analysis import load_run, pair_scores
from .data import load_prepared, loader
from .explain import build_explainer, class_similarity, gradcam_of_class
from .fileio import save_json
from .provenance import checkpoint_digest, tool_digest
from .train import pick_device

NAME = "evaluation.json"
N_BINS = 15  # equal-width confidence bins of the ECE and the reliability diagram
IMAGES = 256  # the explanation subset: the first test images
STEPS = 16  # deletion / insertion curves: 0, 1/16, ..., 1 of the pixels removed or added
NOISE_STD = 0.1  # infidelity's Gaussian perturbations, in normalized input units
PERTURBATIONS = 10  # infidelity: perturbations per image
BASELINE = "0 in normalized units (each channel's dataset mean)"  # what a removed pixel becomes
BATCH = 256
# The smoke-test scale explains fewer images with fewer curve points and perturbations (the same for
# every run of a scale; each evaluation.json records them). The workflow and `introspect plan` read these.
SCALE_SETTINGS = {"quick": {"images": 64, "steps": 8, "perturbations": 4}}


def settings(scale: str) -> dict:
    """images, steps and perturbations of ``introspect evaluate`` at a scale."""
    return {"images": IMAGES, "steps": STEPS, "perturbations": PERTURBATIONS, **SCALE_SETTINGS.get(scale, {})}


@functools.lru_cache(maxsize=2)
def prepared(path: str) -> dict:
    """A prepared dataset, read and checked once per process (``introspect evaluate`` runs many runs of one)."""
    return load_prepared(Path(path))


# ---- calibration -------------------------------------------------------------------------------

def brier_score(probs: torch.Tensor, y: torch.Tensor) -> float:
    """Multiclass Brier score (Brier 1950): mean over samples of sum_k (p_k - [k = y])^2; 0 is perfect, 2 the worst."""
    onehot = F.one_hot(y, probs.shape[1]).to(probs.dtype)
    return float(((probs - onehot) ** 2).sum(1).mean())


def reliability(probs: torch.Tensor, y: torch.Tensor, n_bins: int = N_BINS) -> dict:
    """Per equal-width bin of top-1 confidence, [i/n, (i+1)/n): the sample count and the sums of
    confidence and correctness (sums, so seeds pool exactly). The bins are torchmetrics' except
    that a confidence of exactly 1 falls in the last bin, not in a bin of its own."""
    conf, pred = probs.max(1)
    edges = torch.linspace(0, 1, n_bins + 1, dtype=conf.dtype, device=conf.device)
    idx = (torch.bucketize(conf, edges, right=True) - 1).clamp(0, n_bins - 1)
    zeros = torch.zeros(n_bins, dtype=torch.float64, device=conf.device)
    return {"count": zeros.index_add(0, idx, torch.ones_like(conf, dtype=torch.float64)).tolist(),
            "confidence_sum": zeros.index_add(0, idx, conf.double()).tolist(),
            "correct_sum": zeros.index_add(0, idx, (pred == y).double()).tolist()}


def calibration(logits: torch.Tensor, y: torch.Tensor, n_bins: int = N_BINS) -> dict:
    """NLL (nats), ECE (top-label, ``n_bins`` equal-width bins, L1) and Brier score of ``logits``, plus
    the reliability bins."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    logits = logits.float()
    probs = logits.softmax(1)
    return {"nll": float(F.cross_entropy(logits, y)),
            "ece": float(multiclass_calibration_error(probs, y, num_classes=probs.shape[1], n_bins=n_bins, norm="l1")),
            "brier": brier_score(probs, y),
            "reliability": reliability(probs, y, n_bins)}


# ---- explanations ------------------------------------------------------------------------------

def standard_explainer(model) -> str:
    """The paper's explainer for a model: Grad-CAM where it has a conv feature map, else Grad."""
    return "gradcam" if getattr(model, "conv_layer", None) is not None else "grad"


def to_image(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Per-pixel saliency [b, H, W] of one map per sample: a Grad-CAM map [b, h, w] upsampled
    bilinearly to the image; an input-shaped map [b, C, H, W] as the sum over channels of |map|."""
    if maps.dim() == 4:
        return maps.abs().sum(1)
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def margin_of(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """The logit margin [b] of ``classes``: logit_c − max over k ≠ c of logit_k (> 0 where c is the top-1)."""
    rows = torch.arange(len(classes), device=logits.device)
    own = logits[rows, classes]
    return own - logits.scatter(1, classes[:, None], float("-inf")).max(1).values


def deletion_insertion(model, x: torch.Tensor, saliency: torch.Tensor, classes: torch.Tensor,
                       steps: int = STEPS, baseline: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Areas under the deletion and insertion curves [b] (Petsiuk et al. 2018, RISE, Sec. 4.1), read on
    the relative logit margin so that they do not measure confidence.

    Pixels (every channel of a position together) are ranked by ``saliency`` [b, H, W], highest first
    (ties in index order). Deletion sets the top fraction f of them to ``baseline``; insertion starts
    from an all-``baseline`` image and puts back the top fraction f. With m(x) = z_c(x) − max_{k≠c} z_k(x)
    the logit margin of the predicted class c (:func:`margin_of`; m(x) > 0 on the clean image x), each
    curve is

        g(f) = clip(m(x_f) / m(x), −1, 1)

    at f = 0, 1/steps, ..., 1: 1 is the clean image's lead of c over the runner-up, 0 a tie, −1 another
    class leading by as much; its area (trapezoidal rule over f in [0, 1], within [−1, 1]) is the
    score: a faithful map gives a low deletion and a high insertion area. Dividing the logits by a
    temperature T > 0 divides every margin by T, so g, and both areas, do not change: a model and
    its temperature-scaled twin (the same predictions and the same ranking) score the same, which
    the softmax probability of c that RISE reads does not (a less confident model would look more
    faithful by deletion). The clip bounds an image whose clean margin is tiny (a near tie) to the
    same weight as any other. An image whose clean margin is 0 (an exact tie) counts as 0.
    """
    b, _, h, w = x.shape
    order = saliency.flatten(1).argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(h * w, device=x.device).expand(b, -1))
    curves = []
    with torch.no_grad():
        clean = margin_of(model(x).double(), classes)
        for step in range(steps + 1):
            top = (rank < round(step * h * w / steps)).view(b, 1, h, w)
            deleted = torch.where(top, torch.full_like(x, baseline), x)
            inserted = torch.where(top, x, torch.full_like(x, baseline))
            margins = margin_of(model(torch.cat([deleted, inserted])).double(), classes.repeat(2)).view(2, b)
            relative = torch.where(clean > 0, margins / clean.clamp_min(torch.finfo(clean.dtype).tiny), 0.0)
            curves.append(relative.clamp(-1.0, 1.0))
    curve = torch.stack(curves, -1)  # [2, b, steps + 1]
    area = torch.trapezoid(curve, dx=1.0 / steps, dim=-1).float()
    return area[0], area[1]


def infidelity(model, x: torch.Tensor, attributions: torch.Tensor, classes: torch.Tensor, seed: int = 0,
               noise_std: float = NOISE_STD, samples: int = PERTURBATIONS) -> torch.Tensor:
    """Captum's infidelity [b] of ``attributions`` (input-shaped) for the logits of ``classes``:
    E_I[(I . attr - (f(x) - f(x - I)))^2] over Gaussian I (std ``noise_std``, drawn from ``seed``: the
    same draws for every run), attributions rescaled by the best factor (``normalize=True``), so
    maps of any scale compare."""
    from captum.metrics import infidelity as captum_infidelity

    gen = torch.Generator(device=x.device).manual_seed(seed)

    def perturb(inputs):
        noise = torch.randn(inputs.shape, generator=gen, device=inputs.device, dtype=inputs.dtype) * noise_std
        return noise, inputs - noise

    with torch.no_grad():
        return captum_infidelity(model, perturb, x, attributions, target=classes,
                                 n_perturb_samples=samples, normalize=True)


def agreement(student, teacher, x: torch.Tensor) -> torch.Tensor:
    """cos(Grad-CAM of the student, Grad-CAM of the teacher) [b], both for the teacher's top-1 class
    (e2KD's measure); maps of different sizes are both upsampled to the image first; a zero map gives 0."""
    with torch.enable_grad():
        t_logits, _, t_conv = teacher.forward_features(x)
        classes = t_logits.argmax(1)
        t_map = gradcam_of_class(teacher, t_logits, t_conv, classes)
        s_logits, _, s_conv = student.forward_features(x)
        s_map = gradcam_of_class(student, s_logits, s_conv, classes)
    if t_map.shape != s_map.shape:
        t_map, s_map = to_image(t_map, x.shape[-2:]), to_image(s_map, x.shape[-2:])
    return F.cosine_similarity(s_map.flatten(1), t_map.flatten(1), dim=1, eps=1e-12)


def input_shaped(saliency_map: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """An attribution with ``x``'s shape: an input-shaped map as it is, a Grad-CAM map upsampled to
    the image and repeated over the channels."""
    if saliency_map.dim() == 4:
        return saliency_map
    return to_image(saliency_map, x.shape[-2:])[:, None].expand_as(x)


def explanation_quality(model, explainer: str, batches, teacher=None, steps: int = STEPS,
                        perturbations: int = PERTURBATIONS) -> dict:
    """Faithfulness (deletion, insertion, infidelity), class similarity and, with a ``teacher``,
    agreement of ``model``'s explanations over ``batches`` of (x, y)."""
    ex = build_explainer(explainer, model, key="--explainer")
    sums = {"deletion_auc": 0.0, "insertion_auc": 0.0, "infidelity": 0.0, "teacher_agreement": 0.0}
    similarity, n = None, 0
    for x, _ in batches:
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            logits, _, conv = model.forward_features(x)
            maps = ex.maps(model, x, logits, conv).detach()  # [b, c, *map]
        x = x.detach()
        classes = logits.detach().argmax(1)
        own = maps[torch.arange(len(x), device=x.device), classes]  # the predicted class's map
        deletion, insertion = deletion_insertion(model, x, to_image(own, x.shape[-2:]), classes, steps)
        sums["deletion_auc"] += float(deletion.sum())
        sums["insertion_auc"] += float(insertion.sum())
        sums["infidelity"] += float(infidelity(model, x, input_shaped(own, x), classes, seed=n, samples=perturbations).sum())
        if teacher is not None:
            sums["teacher_agreement"] += float(agreement(model, teacher, x).sum())
        batch_similarity = class_similarity(maps).sum(0)
        similarity = batch_similarity if similarity is None else similarity + batch_similarity
        n += len(x)
    out = {k: v / n for k, v in sums.items()}
    if teacher is None:
        out["teacher_agreement"] = None
    out["similarity"] = (similarity / n).cpu().tolist()
    out["images"] = n
    return out


def teacher_of(cfg: dict, device: torch.device):
    """(folder, model in eval mode) of the run's teacher (``method.teacher``), or (None, None)."""
    folder = cfg["method"].get("teacher")
    if not folder:
        return None, None
    _, teacher = load_run(Path(folder), device)
    return folder, teacher


def evaluate_run(run: Path, out: Path | None = None, images: int = IMAGES, explainer: str | None = None,
                 device: str = "auto", steps: int = STEPS, perturbations: int = PERTURBATIONS) -> dict:
    """Calibration and explanation quality of the finished run ``run``, saved as JSON to ``out``
    (default ``<run>/evaluation.json``); returns what it saved."""
    run = Path(run)
    dev = pick_device(device)
    cfg, model = load_run(run, dev)
    data = prepared(str(cfg["dataset"]["path"]))
    logits, labels = [], []
    with torch.no_grad():
        for x, y in loader(data, "test", BATCH, dev).batches():
            logits.append(model(x).float())
            labels.append(y)
    result = {"run": str(run), "checkpoint_sha256": checkpoint_digest(run), "test_images": len(torch.cat(labels)),
              **calibration(torch.cat(logits), torch.cat(labels))}
    explainer = explainer or standard_explainer(model)
    teacher_folder, teacher = teacher_of(cfg, dev)
    if teacher is not None and (model.conv_layer is None or getattr(teacher, "conv_layer", None) is None):
        teacher = None  # Grad-CAM needs a conv feature map on both sides
    subset = {**data, "tensors": {"x_test": data["tensors"]["x_test"][:images], "y_test": data["tensors"]["y_test"][:images]}}
    quality = explanation_quality(model, explainer, loader(subset, "test", BATCH, dev).batches(), teacher, steps,
                                  perturbations)
    result.update(quality)
    result.update(pair_scores(quality["similarity"], data["classes"]))
    result.update({"code_sha256": tool_digest("evaluate"), "explainer": explainer, "classes": [str(c) for c in data["classes"]], "steps": steps,
                   "baseline": BASELINE, "infidelity_noise_std": NOISE_STD, "infidelity_perturbations": perturbations,
                   "teacher": teacher_folder,
                   "teacher_checkpoint_sha256": checkpoint_digest(Path(teacher_folder)) if teacher_folder else None})
    save_json(result, Path(out) if out else run / NAME)
    return result
