"""`introspect bench`: what LE's explanations (and a teacher, for the KD family) cost next to CE,
and what the device-resident loader buys. Teachers are the paper's (ResNet26, CNN-10), untrained.

Everything compared is measured side by side in one run: the methods' training steps are timed in
interleaved rounds (ce, le(grad), le(gradcam), ..., ce, ...) so drift of the machine hits each
alike, and the medians are compared. Output lines:

    step_ms <method> <model> <device> <median ms>
    ratio <method> <model> <device> <median step / median ce step>
    images_per_s loader <introspect|torchvision> <device> <value>
    ratio loader introspect/torchvision <device> <value>
"""
from __future__ import annotations

import copy
import statistics
import time
from pathlib import Path

import torch

from .data import DATASETS, DeviceLoader, pick_device, speed_settings
from .explain import EXPLAINERS
from .methods import METHODS
from .models import MODELS
from .registry import ConfigError
from .config import family

SHAPES = {"mlp": "mnist"}  # the dataset each family is benchmarked on (default: cifar10)
TEACHERS = {"resnet": "resnet26", "cnn": "cnn10", "mlp": "mlp1024"}  # the paper's teacher per family


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def teacher_stage(kind: str, teacher: torch.nn.Module, num_classes: int, batch_size: int, device):
    """An untrained in-memory teacher run of method ``kind`` on ``teacher``'s architecture (every
    sample counted once, for self-regulated teachers)."""
    opts = {"teacher": "in-memory"} if METHODS.get(kind).needs_teacher else {}
    stage = METHODS.build(kind, copy.deepcopy(teacher), num_classes, **opts).to(device)
    if stage.needs_teacher:
        stage.use_teacher(teacher)
    stage.bind_data(batch_size)
    if getattr(stage, "counts", None) is not None:
        stage.counts.fill_(1)
    return stage.eval()


def step_times(model_name: str, device: torch.device, batch_size: int, steps: int, dataset: str | None = None,
               labels: set[str] | None = None, teacher_model: str | None = None, clock=time.perf_counter,
               warmup: int = 3) -> dict[str, list[float]]:
    """Seconds of each timed step per label (ce, le_<explainer>, every other method) of ``model_name``
    on batches shaped as ``dataset``'s (default: its family's); ``labels``: only these (and ce);
    ``teacher_model``: the KD family's teacher (default: the paper's for the family); ``clock``:
    time.process_time times a step in CPU seconds of this process (a shared machine)."""
    src = DATASETS.get(dataset or SHAPES.get(family(model_name), "cifar10"))
    torch.manual_seed(0)
    base = MODELS.build(model_name, src.channels, src.size, len(src.classes))
    variants = {"ce": ("ce", {})}
    for ex in EXPLAINERS.names():
        if base.conv_layer is not None or not EXPLAINERS.get(ex).needs_conv:
            variants[f"le_{ex}"] = ("le", {"explainer": ex, "warmup": 0})
    teacher = MODELS.build(teacher_model or TEACHERS[family(model_name)], src.channels, src.size, len(src.classes)).to(device)
    for name in METHODS.names():
        if name not in ("ce", "le", "le_permut"):
            variants[name] = (name, {"teacher": "in-memory"} if METHODS.get(name).needs_teacher else {})
    if labels is not None:
        variants = {k: v for k, v in variants.items() if k == "ce" or k in labels}
    bf16, channels_last = speed_settings({"precision": "auto", "channels_last": "auto"}, device)  # as training does
    layout = torch.channels_last if channels_last else torch.contiguous_format
    runs = {}
    for label, (method, opts) in variants.items():
        try:
            m = METHODS.build(method, copy.deepcopy(base), len(src.classes), **opts).to(device, memory_format=layout)
            m.bind_data(batch_size)
            if m.needs_teacher:  # BAN learns from a copy of itself
                if method.startswith("ban"):
                    m.use_teacher(copy.deepcopy(base).to(device))
                elif m.teacher_method == "ce":
                    m.use_teacher(teacher)
                else:  # a teacher trained with another method (IE-KD's auto-encoder stage, ...): built here, untrained
                    m.learn_from(teacher_stage(m.teacher_method, teacher, len(src.classes), batch_size, device))
        except ConfigError:  # e.g. feature distillation on an MLP (no conv stages) or unmatched stages
            continue
        opt = torch.optim.SGD(m.trainable_parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        runs[label] = (m.train(), opt)
    x = torch.randn(batch_size, src.channels, src.size, src.size, device=device).contiguous(memory_format=layout)
    y = torch.randint(0, len(src.classes), (batch_size,), device=device)
    index = torch.arange(batch_size, device=device)

    def step(label: str) -> float:
        m, opt = runs[label]
        _sync(device)
        t0 = clock()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, _ = m.loss(x, y, epoch=0, **({"index": index} if m.uses_index else {}))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        return clock() - t0

    for label in runs:  # warm-up: allocator, kernels, autograd caches
        for _ in range(warmup):
            step(label)
    times: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(steps):
        for label in runs:
            times[label].append(step(label))
    return times


def probe(points: list[tuple[str, int, str]], steps: int, warmup: int = 2) -> tuple[dict[tuple[str, int, str], float], float]:
    """`introspect plan`'s calibration (introspect.plan.calibrate): the median CPU milliseconds of a CE
    training step here of each (dataset, batch size, model) of ``points``, on one thread, timed as
    `introspect bench --cpu-time` times them; and the probe's wall-clock seconds over its CPU seconds
    (above 1: other work shares these cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workflow runs a job (OMP_NUM_THREADS=1)
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        measured = {(dataset, batch, model): 1000 * statistics.median(
            step_times(model, torch.device("cpu"), batch, steps, dataset, set(), clock=time.process_time, warmup=warmup)["ce"])
            for dataset, batch, model in points}
    finally:
        torch.set_num_threads(threads)
    return measured, (time.perf_counter() - wall) / max(time.process_time() - cpu, 1e-9)


def loader_throughput(device: torch.device, n: int, batch_size: int, rounds: int = 3) -> dict[str, float]:
    """images/s over one pass of n CIFAR10-shaped images with the paper's augmentation."""
    import torchvision.transforms.v2 as T
    from torch.utils.data import DataLoader, Dataset

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    ours = DeviceLoader(x, y, mean, std, batch_size, device, augment="crop_flip", shuffle=True)
    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToDtype(torch.float32, scale=True),
                    T.Normalize(mean.tolist(), std.tolist())])

    class Images(Dataset):
        def __len__(self):
            return n

        def __getitem__(self, i):
            return tf(x[i]), y[i]

    workers = min(4, torch.get_num_threads())
    theirs = DataLoader(Images(), batch_size=batch_size, shuffle=True, num_workers=workers,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    gen = torch.Generator(device=device).manual_seed(0)

    def one_pass(batches) -> float:
        _sync(device)
        t0 = time.perf_counter()
        for xb, yb in batches:
            xb = xb.to(device, non_blocking=True)
            yb = yb.to(device, non_blocking=True)
        _sync(device)
        return n / (time.perf_counter() - t0)

    rates = {"introspect": [], "torchvision": []}
    one_pass(ours.batches(gen)), one_pass(theirs)  # warm-up (worker start-up)
    for _ in range(rounds):
        rates["introspect"].append(one_pass(ours.batches(gen)))
        rates["torchvision"].append(one_pass(theirs))
    return {k: statistics.median(v) for k, v in rates.items()} | {"workers": workers}


def run_bench(device: str, models: list[str], batch_size: int, steps: int, loader_images: int,
              json_path: str | None = None) -> None:
    dev = pick_device(device)
    for name in models:
        MODELS.get(name, "--models")
    print(f"# device {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, batch {batch_size}, {steps} interleaved steps per method", flush=True)
    measured: dict[str, dict[str, float]] = {}
    for name in models:
        times = step_times(name, dev, batch_size, steps)
        measured[name] = {label: 1000 * statistics.median(ts) for label, ts in times.items()}
        ce = statistics.median(times["ce"])
        for label, ts in times.items():
            print(f"step_ms {label} {name} {dev.type} {1000 * statistics.median(ts):.2f}")
            if label == "ce" or label.startswith("le_"):
                print(f"images_per_s {label} {name} {dev.type} {batch_size / statistics.median(ts):.0f}")
        for label, ts in times.items():
            if label != "ce":
                print(f"ratio {label} {name} {dev.type} {statistics.median(ts) / ce:.3f}", flush=True)
    if json_path:  # the step times `introspect plan --bench` turns into hours
        from .fileio import save_json

        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
        save_json({"device": name, "torch": torch.__version__, "batch_size": batch_size, "steps": steps,
                   "step_ms": measured}, Path(json_path))
    rates = loader_throughput(dev, loader_images, batch_size)
    print(f"images_per_s loader introspect {dev.type} {rates['introspect']:.0f}")
    print(f"images_per_s loader torchvision {dev.type} {rates['torchvision']:.0f}  (DataLoader, {rates['workers']} workers)")
    print(f"ratio loader introspect/torchvision {dev.type} {rates['introspect'] / rates['torchvision']:.2f}")


def run_scale_bench(device: str, entries: list[dict], steps: int, json_path: str | None = None, cpu_time: bool = False,
                    warmup: int = 1, info: str = "") -> None:
    """Time what a scale trains: ``entries`` (introspect.plan.bench_entries) are one per (dataset, batch
    size), each with its models' step labels and the teacher each model family learns from. Writes the
    file `introspect plan --bench` reads: {"device", "torch", "steps", "clock", "entries": [{"dataset",
    "batch_size", "step_ms": {model: {label: median ms}}}]}."""
    dev = pick_device(device)
    clock = time.process_time if cpu_time else time.perf_counter
    print(f"# device {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {steps} interleaved steps per method, "
          f"{'CPU seconds of this process' if cpu_time else 'wall-clock'}{info}", flush=True)
    written = []
    for entry in entries:
        measured: dict[str, dict[str, float]] = {}
        for model, labels in entry["models"].items():
            teacher = entry.get("teachers", {}).get(family(model))
            times = step_times(model, dev, entry["batch_size"], steps, entry["dataset"], set(labels), teacher, clock, warmup)
            measured[model] = {label: round(1000 * statistics.median(ts), 3) for label, ts in times.items()}
            for label, ms in measured[model].items():
                print(f"step_ms {label} {model} {entry['dataset']} {entry['batch_size']} {dev.type} {ms:.2f}", flush=True)
            for label, ms in measured[model].items():
                if label != "ce":
                    print(f"ratio {label} {model} {entry['dataset']} {entry['batch_size']} {dev.type} "
                          f"{ms / measured[model]['ce']:.3f}", flush=True)
        written.append({"dataset": entry["dataset"], "batch_size": entry["batch_size"], "step_ms": measured})
    if json_path:
        from .fileio import save_json

        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
        save_json({"device": name, "torch": torch.__version__, "steps": steps,
                   "clock": "process_time" if cpu_time else "perf_counter", "entries": written}, Path(json_path))
