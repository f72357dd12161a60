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
    (Petsiuk et al. 2018, RISE, Sec. 4.1), read on the predicted class's logit margin in units of the
    model's median clean margin, so that they measure the map and not the model's confidence, each
    also against random maps on the same images and model (real − random per image, with its
    interval over images, :data:`CI_LEVEL`), ties and images of the blank image's class left out and
    counted, and no score on fewer than :data:`MIN_SCORED` scored images (:func:`faithfulness`; the random maps are drawn from a seed derived from the run's seed,
    :func:`random_maps_seed`, so an evaluation is deterministic), and Captum's infidelity
    (Yeh et al. 2019; ``captum.metrics.infidelity``, Gaussian perturbations, optimally rescaled
    attributions);
  - for a student (``method.teacher``): the cosine between its Grad-CAM and its teacher's for the
    teacher's top-1 class (the agreement e2KD trains for, Parchami-Araghi et al. 2024);
  - the class-by-class explanation similarity averaged over the subset (the paper's Figure 2), from
    which the report checks whether known-similar classes rank close (claim C10's test), and its pair
    scores (:func:`introspect.analysis.pair_scores`).

``checkpoint_sha256`` records which checkpoint was evaluated and ``code_sha256`` the code that evaluated
it (:func:`introspect.provenance.tool_digest`: this module, every module of the package it imports,
and the versions of torch, captum, torchmetrics and scipy): the report ignores an evaluation.json whose run
was retrained since or whose code changed, and the workflow's evaluate job has the digest as a param,
so it runs again.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F

from .analysis import load_run, pair_scores
from .data import for_run, load_prepared, loader, pick_device
from .explain import build_explainer, class_similarity, gradcam_of_class
from .fileio import save_json
from .provenance import checkpoint_digest, tool_digest

NAME = "evaluation.json"
N_BINS = 15  # equal-width confidence bins of the ECE and the reliability diagram
IMAGES = 256  # the explanation subset: the first test images
STEPS = 16  # deletion / insertion curves: 0, 1/16, ..., 1 of the pixels removed or added
NOISE_STD = 0.1  # infidelity's Gaussian perturbations, in normalized input units
PERTURBATIONS = 10  # infidelity: perturbations per image
# What a removed pixel becomes: 0 in the model's input units, by the run's dataset.scaling
BASELINE = {"standardize": "0 in normalized units (each channel's dataset mean)", "unit": "0 (a black pixel)"}
# A clean margin at most this fraction of the image's largest |logit| is a tie: 8 float32 rounding
# units (2^-23 each), the size at which the order of the floating-point operations can flip the top-1
TIE = 2.0 ** -20
CI_LEVEL = 0.90  # the per-run interval over images of the relative deletion / insertion scores: the report's
# level (two-sided 90 %, that of a one-sided test at 0.05)
# The fewest scored images a deletion / insertion score may rest on: below it (most images ties or of the
# blank image's class) every score is None, a missing value the report counts. At 10 the 90 % Student-t
# interval's half-width is 1.83 standard errors (t(0.95, 9)); at 2 or 3 it would be 6.3 or 2.9, and one image
# (one run scored 1 of 64) has no spread at all.
MIN_SCORED = 10
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


def margin_curves(model, x: torch.Tensor, saliency: torch.Tensor, classes: torch.Tensor, steps: int = STEPS,
                  baseline: float = 0.0, ties: torch.Generator | None = None) -> torch.Tensor:
    """The deletion and insertion curves of Petsiuk et al. 2018 (RISE, Sec. 4.1), read on the logit
    margin: [2, b, steps + 1] float64, row 0 deletion, row 1 insertion, each m(x_f) = z_c(x_f) −
    max_{k≠c} z_k(x_f) of ``classes`` c (:func:`margin_of`) at f = 0, 1/steps, ..., 1.

    Pixels (every channel of a position together) are ranked by ``saliency`` [b, H, W], highest first;
    equal values in index order, or with ``ties`` (a seeded generator) in a random order: a ReLU'd
    Grad-CAM map has many pixels at exactly 0, and index order would delete them top rows first, a
    property of the raster, not of the map. Deletion sets the top fraction f of them to ``baseline``; insertion starts
    from an all-``baseline`` image and puts back the top fraction f. Both curves go from the clean
    image to the all-baseline one (deletion at f = 0 and insertion at f = 1 are the clean image):
    only the order, the map's, differs between maps. :func:`faithfulness` turns them into scores."""
    b, _, h, w = x.shape
    flat = saliency.flatten(1)
    if ties is None:
        order = flat.argsort(dim=1, descending=True, stable=True)
    else:  # a stable sort of randomly permuted pixels, mapped back: equal values in random order
        perm = torch.randperm(h * w, generator=ties).to(flat.device)
        order = perm[flat[:, perm].argsort(dim=1, descending=True, stable=True)]
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(h * w, device=x.device).expand(b, -1))
    curves = []
    with torch.no_grad():
        for step in range(steps + 1):
            top = (rank < round(step * h * w / steps)).view(b, 1, h, w)
            deleted = torch.where(top, torch.full_like(x, baseline), x)
            inserted = torch.where(top, x, torch.full_like(x, baseline))
            curves.append(margin_of(model(torch.cat([deleted, inserted])).double(), classes.repeat(2)).view(2, b))
    return torch.stack(curves, -1)


def is_tie(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """[b] True where the margin of ``classes`` is at most :data:`TIE` times the largest |logit|: within
    a few float32 rounding units of 0, where which class leads is an accident of the order of the
    floating-point operations. Relative to the logits' size, so a temperature does not change it."""
    return margin_of(logits, classes) <= TIE * logits.abs().max(1).values


def blank_class(model, x: torch.Tensor, baseline: float = 0.0) -> int | None:
    """The top-1 class of the all-``baseline`` image shaped like ``x``'s images, None where it is a tie."""
    with torch.no_grad():
        logits = model(torch.full_like(x[:1], baseline)).double()
    top = logits.argmax(1)
    return None if bool(is_tie(logits, top)[0]) else int(top[0])


def left_out(logits: torch.Tensor, classes: torch.Tensor, blank: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """([b] ties, [b] blank-class images) that :func:`faithfulness` leaves out: an exact or near tie
    (:func:`is_tie`: the "predicted class" is arbitrary), or, among the rest, an image predicted as the
    class the all-baseline image is predicted as (:func:`blank_class`): its insertion curve starts with
    that class already leading and its deletion curve ends there, whatever the map."""
    ties = is_tie(logits.double(), classes)
    blank_images = (classes == blank) & ~ties if blank is not None else torch.zeros_like(ties)
    return ties, blank_images


def mean_interval(values: torch.Tensor, level: float = CI_LEVEL) -> tuple[float, list[float] | None]:
    """The mean of ``values`` and its two-sided Student-t interval at ``level`` (None under 2 values)."""
    from scipy.stats import t

    n, mean = len(values), float(values.mean())
    if n < 2:
        return mean, None
    half = float(t.ppf(0.5 + level / 2, n - 1)) * float(values.std(unbiased=True)) / n ** 0.5
    return mean, [mean - half, mean + half]


def faithfulness(curves: dict[str, torch.Tensor], clean: torch.Tensor, scored: torch.Tensor, steps: int,
                 min_images: int = MIN_SCORED) -> dict:
    """Deletion and insertion scores of the maps behind ``curves`` (name -> :func:`margin_curves` of
    the same n images, "real" the explainer's maps, "random" random maps), over the ``scored`` [n]
    images; ``clean`` [n] is their clean margins m(x).

    Each curve is read in units of the model's typical clean margin, M = the median of m(x) over the
    scored images: g(f) = m(x_f) / M, and its area (trapezoidal rule over f in [0, 1]) is the score:
    a faithful map gives a low deletion and a high insertion area. Dividing the logits by a
    temperature T > 0 divides every margin and M by T, so the scores do not change (a less confident
    model does not look more faithful, as it does on RISE's softmax probability). M is one number
    per model, not the image's own m(x): the ratio m(x_f) / m(x) of an earlier version explodes as
    m(x) nears 0 and had to be clipped to [−1, 1], which hid size (a margin falling to −4 times
    the clean one scored as one falling to −20 times it; on some models nearly half the points sat
    at the clip); here nothing is clipped and a near tie weighs no more than its own margin: g = 1
    is the model's median lead of the top-1 class, g = −2 another class leading by twice that.

    The real maps' areas still mix in the model's margins and its mix of classes (random maps score
    differently per model), so each map is scored against random maps **on the same images and the
    same model**: per image real − random, whose mean over the scored images, with its 90 % Student-t
    interval over images (M is a common factor: it scales the mean and the interval alike), is the
    relative score: below 0 on deletion and above 0 on insertion when the map is more faithful than
    chance; random maps score about 0, a map ranked backwards the other way.

    A score needs at least :data:`MIN_SCORED` scored images: with fewer (most of the subset ties or
    of the blank image's class) every score is None, a missing value the report counts and names,
    never a mean of one or two images.

    Returns ``deletion_auc``, ``insertion_auc`` (the real maps), ``{score}_auc_{name}`` for the other
    names, ``{score}_auc[_{name}]_relative`` and ``..._relative_ci`` for every name but "random",
    ``faithfulness_scale`` (M, in logits), ``faithfulness_images`` (how many were scored) and
    ``faithfulness_min_images`` (``min_images``, :data:`MIN_SCORED`); every score None when fewer images are scored."""
    n = int(scored.sum())
    out: dict = {"faithfulness_images": n, "faithfulness_scale": None, "faithfulness_min_images": min_images}
    names = [("" if name == "real" else f"_{name}", name) for name in curves]
    for score in ("deletion", "insertion"):
        for suffix, name in names:
            out[f"{score}_auc{suffix}"] = None
            if name != "random":
                out[f"{score}_auc{suffix}_relative"] = out[f"{score}_auc{suffix}_relative_ci"] = None
    if n < min_images:
        return out
    scale = torch.quantile(clean[scored].double(), 0.5)
    areas = {name: torch.trapezoid(c[:, scored] / scale, dx=1.0 / steps, dim=-1) for name, c in curves.items()}
    out["faithfulness_scale"] = float(scale)
    for row, score in enumerate(("deletion", "insertion")):
        for suffix, name in names:
            out[f"{score}_auc{suffix}"] = float(areas[name][row].mean())
            if name != "random":
                mean, ci = mean_interval(areas[name][row] - areas["random"][row])
                out[f"{score}_auc{suffix}_relative"], out[f"{score}_auc{suffix}_relative_ci"] = mean, ci
    return out


def random_maps_seed(run_seed: int) -> int:
    """The seed of a run's random maps, derived from the run's seed: the same draws for every run of
    that seed (so CE and LE of one seed are scored against the same random maps wherever their
    explainers' maps have one shape), through a hash, so that they are not the draws the run's
    training started from (``torch.manual_seed(seed)``)."""
    return int.from_bytes(hashlib.sha256(f"introspect random maps, seed {run_seed}".encode()).digest()[:7], "little")


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
                        perturbations: int = PERTURBATIONS, seed: int = 0) -> dict:
    """Faithfulness (deletion and insertion against random maps drawn from ``random_maps_seed(seed)``,
    :func:`faithfulness`; infidelity), class similarity and, with a ``teacher``, agreement of
    ``model``'s explanations over ``batches`` of (x, y).

    A random map has the shape of the explainer's own map (Grad-CAM's conv-resolution map, upsampled
    alike; Grad's input-shaped one), uniform values drawn on the CPU, so the draws do not depend on
    the device: it differs from the real map in its content only."""
    ex = build_explainer(explainer, model, key="--explainer")
    gen = torch.Generator().manual_seed(random_maps_seed(seed))
    tie_order = torch.Generator().manual_seed(random_maps_seed(seed) + 1)  # equal saliency: a random order
    sums = {"infidelity": 0.0, "teacher_agreement": 0.0}
    curves: dict[str, list[torch.Tensor]] = {"real": [], "random": []}
    clean, ties, blank_images = [], [], []
    similarity, blank, n = None, None, 0
    for x, _ in batches:
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            logits, _, conv = model.forward_features(x)
            maps = ex.maps(model, x, logits, conv).detach()  # [b, c, *map]
        x, logits = x.detach(), logits.detach()
        classes = logits.argmax(1)
        own = maps[torch.arange(len(x), device=x.device), classes]  # the predicted class's map
        noise = torch.rand(own.shape, generator=gen).to(own.device)
        for name, saliency in (("real", own), ("random", noise)):
            curves[name].append(margin_curves(model, x, to_image(saliency, x.shape[-2:]), classes, steps, ties=tie_order))
        if n == 0:
            blank = blank_class(model, x)
        tie, blank_image = left_out(logits, classes, blank)
        clean.append(margin_of(logits.double(), classes))
        ties.append(tie)
        blank_images.append(blank_image)
        sums["infidelity"] += float(infidelity(model, x, input_shaped(own, x), classes, seed=n, samples=perturbations).sum())
        if teacher is not None:
            sums["teacher_agreement"] += float(agreement(model, teacher, x).sum())
        batch_similarity = class_similarity(maps).sum(0)
        similarity = batch_similarity if similarity is None else similarity + batch_similarity
        n += len(x)
    out = {k: v / n for k, v in sums.items()}
    if teacher is None:
        out["teacher_agreement"] = None
    ties, blank_images = torch.cat(ties), torch.cat(blank_images)
    out.update(faithfulness({k: torch.cat(v, 1) for k, v in curves.items()}, torch.cat(clean),
                            ~(ties | blank_images), steps))
    out.update({"faithfulness_ties": int(ties.sum()), "faithfulness_blank": int(blank_images.sum()),
                "blank_class": blank, "random_maps_seed": random_maps_seed(seed)})
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
    data = for_run(prepared(str(cfg["dataset"]["path"])), cfg["dataset"])
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
                                  perturbations, seed=cfg["seed"])
    result.update(quality)
    result.update(pair_scores(quality["similarity"], data["classes"]))
    result.update({"code_sha256": tool_digest("evaluate"), "explainer": explainer, "classes": [str(c) for c in data["classes"]], "steps": steps,
                   "baseline": BASELINE[cfg["dataset"].get("scaling", "standardize")], "infidelity_noise_std": NOISE_STD, "infidelity_perturbations": perturbations,
                   "teacher": teacher_folder,
                   "teacher_checkpoint_sha256": checkpoint_digest(Path(teacher_folder)) if teacher_folder else None})
    save_json(result, Path(out) if out else run / NAME)
    return result
