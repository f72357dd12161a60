"""The one training loop, for every method.

A run folder holds ``config.json`` (resolved), ``checkpoint.pt`` (written atomically after every
epoch, with a checksum, the previous one kept as ``checkpoint.prev.pt``: method/model, optimizer,
scheduler, every RNG state, the history so far), ``history.parquet``
(one row per epoch) and, at the end, ``metrics.json`` then ``provenance.json`` (the receipt the
workflow waits for). A run started again in the same folder resumes from its checkpoint; on the
CPU it ends bit-identical to a run that was never stopped. A run whose config, code or teacher
changed since it was trained is moved whole to ``superseded/<time>/`` and trained again
(:mod:`introspect.provenance`).
The step has no host synchronization: losses and accuracies accumulate on the device and are
read once per epoch.
"""
from __future__ import annotations

import collections
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from .checkpoint import NAME, CheckpointError, load_latest, model_weights, read_checkpoint, save_checkpoint
from .data import DataError, for_run, load_prepared, loader, pick_device, speed_settings
from .fileio import WriteError, save_json, save_parquet
from .methods.base import Method
from .methods.runs import build, refusals
from .provenance import differences, of_run
from . import runcache
from .registry import ConfigError
from .runfolder import CONFIG, HISTORY, METRICS, RECEIPT, move_aside, same_config, write_progress

# MultiStepLR keeps its milestones in a Counter; allow it in weights-only checkpoint loading.
torch.serialization.add_safe_globals([collections.Counter])


class Diverged(RuntimeError):
    """The loss became non-finite; the run stopped and its last good checkpoint is kept."""


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches) -> tuple[float, float]:
    """(mean CE loss, accuracy in %) of ``model`` in eval mode over an iterable of batches."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    loss, correct, n = torch.zeros((), device=dev), torch.zeros((), device=dev), 0
    for x, y in batches:
        logits = model(x)
        loss += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
        n += len(y)
    model.train(was_training)
    loss, correct = torch.stack([loss, correct]).tolist()
    return loss / max(n, 1), 100.0 * correct / max(n, 1)


def load_init(model: torch.nn.Module, run: Path) -> None:
    """Start ``model`` from the final weights of the finished run ``run`` (a FitNets / FSP stage)."""
    if not (run / "metrics.json").exists():
        raise ConfigError(f"init: {run} is not a finished run (no metrics.json)")
    try:
        state = read_checkpoint(run / NAME)["method"]
    except CheckpointError as exc:
        raise ConfigError(f"init: {exc}") from None
    try:
        model.load_state_dict(model_weights(state))
    except RuntimeError as exc:
        detail = " ".join(str(exc).split()[6:])  # past "Error(s) in loading state_dict for X:"
        raise ConfigError(f"init: {run} holds another architecture ({detail[:200]})") from None


def restore_rng(rng: dict, gen: torch.Generator, device: torch.device, name: str, log) -> None:
    """Restore a checkpoint's RNG streams. The loader's generator (and CUDA's stream) only on the
    device type that wrote them: their states differ in kind, and a run resumed on another device
    type restarts those streams from the seed, saying so."""
    torch.set_rng_state(rng["torch"])
    saved_on = rng.get("device", "cuda" if "cuda" in rng else "cpu")
    if saved_on != device.type:
        print(f"[{name}] written on {saved_on}, resumed on {device.type}: the data order and the device's random "
              "draws restart from the seed", file=log, flush=True)
        return
    gen.set_state(rng["loader"])
    if device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"], device)


def best_val_metrics(history: list[dict], prefix: str = "") -> dict:
    """The second epoch protocol: test accuracy (and error) at the first epoch of highest validation
    accuracy, and that epoch. The first protocol, the paper's, is the last epoch's."""
    best = max(history, key=lambda h: (h[f"{prefix}val_acc"], -h["epoch"]))
    return {f"{prefix}best_val_epoch": best["epoch"], f"{prefix}best_val_test_acc": best[f"{prefix}test_acc"],
            f"{prefix}best_val_test_err": 100.0 - best[f"{prefix}test_acc"]}


def schedule_warnings(cfg: dict) -> list[str]:
    """Parts of a run's schedule its length leaves unused: a method's warm-up that never ends, an
    lr milestone at or past the last epoch."""
    epochs, out = cfg["epochs"], []
    warmup = cfg["method"].get("warmup")
    if isinstance(warmup, int) and warmup >= epochs:
        out.append(f"method.warmup = {warmup} >= epochs = {epochs}: {cfg['method']['name']} never leaves its warm-up")
    late = [m for m in cfg["optim"]["milestones"] if m >= epochs]
    if late:
        out.append(f"optim.milestones {late} at or past the last epoch ({epochs}): the lr never drops there")
    return out


def teacher_depth(cfg: dict) -> int:
    """How many teachers stand between a run and one that learned from none (0: it learns from none)."""
    depth, seen = 0, set()
    while (teacher := cfg["method"].get("teacher")) and teacher not in seen:
        seen.add(teacher)
        depth += 1
        try:
            cfg = json.loads((Path(teacher) / "config.json").read_text())
        except (OSError, ValueError):
            break
    return depth


def init_seed(cfg: dict) -> int:
    """The seed of a run's random initialization (and of the global stream its method draws from).

    A run that learns from no teacher uses its seed. A student uses another stream for each teacher
    generation, seed + 1,000,003 x depth: a BAN student of a CE run of the same network and seed
    starts from weights of its own, as the BAN paper trains each generation from scratch. The data
    order and augmentation come from a generator seeded with the seed alone, so every row of one
    seed still sees the same batches (paired comparisons)."""
    return cfg["seed"] + 1_000_003 * teacher_depth(cfg)


@dataclass
class Training:
    """A run ready to train: its resolved config (with its provenance), folder, log and name, and
    what trains it, built in the order that fixes its numbers (the seed, then the model)."""
    cfg: dict
    out: Path
    log: object
    name: str
    device: torch.device
    data: dict
    model: torch.nn.Module
    method: Method
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    gen: torch.Generator  # the data order and augmentation: seeded with the seed alone
    bf16: bool
    channels_last: bool

    def say(self, line: str) -> None:
        print(f"[{self.name}] {line}", file=self.log, flush=True)

    def machine(self) -> dict:
        return runcache.machine(self.device.type, self.bf16)


def train(cfg: dict, out: Path, log=None, supersede: bool = False, cache: Path | None = None,
          restore: bool = True) -> dict:
    """Train the run ``cfg`` (resolved) into folder ``out``; return its final metrics.

    A folder holding this run resumes it; a folder holding another config is refused, or with
    ``supersede`` (what the workflow asks for when a run's params change) moved aside first.
    A run with nothing to resume is restored, not trained, from a verified copy of its identity in
    ``out/superseded/`` or the run cache folder ``cache``; a run trained here is stored there
    (:mod:`introspect.runcache`; ``restore=False``: neither). ``log``: default the standard error of
    the moment of the call (not of the import: a caller may have redirected it since).
    """
    run = prepare(cfg, Path(out), log or sys.stderr)
    try:
        history, finished = resume_or_restore(run, supersede, cache, restore)
        if finished is not None:
            return finished
        train_epochs(run, history)
        return finish(run, history, cache, restore)
    except WriteError as exc:  # no space, no permission: say which epoch the same command resumes from
        state, _ = load_latest(run.out)
        exc.kept = f"epoch {len(state['history'])}'s checkpoint is kept" if state else "no checkpoint of this run was written yet"
        raise


def prepare(cfg: dict, out: Path, log) -> Training:
    """The device, the data, the run's provenance, then (seeded) the model, its method, the
    optimizer, the lr schedule and the data order's generator."""
    device = pick_device(cfg["device"])
    torch.backends.cudnn.benchmark = device.type == "cuda"  # shapes are fixed within a run: autotune once
    data = load_prepared(Path(cfg["dataset"]["path"]), cfg["dataset"]["name"])
    if data["name"] != cfg["dataset"]["name"]:
        raise DataError(f"{cfg['dataset']['path']}: holds {data['name']!r}, not {cfg['dataset']['name']!r}")
    data = for_run(data, cfg["dataset"])
    name = f"{cfg['dataset']['name']}/{cfg['model']['name']}/{cfg['method']['name']} seed{cfg['seed']}"
    cfg = {**cfg, "provenance": of_run(cfg, data["sha256"])}

    torch.manual_seed(init_seed(cfg))
    model, method = build(cfg)
    bf16, channels_last = speed_settings(cfg, device)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    method.to(device, memory_format=layout)
    with refusals(cfg):  # a teacher this model cannot be matched with: one line naming both
        method.setup(device)
    method.to(memory_format=layout)  # what setup built or loaded (a teacher, a regressor) in the run's layout too
    method.bind_data(len(data["tensors"]["y_train"]))
    if cfg["compile"]:
        model.compile()  # in place: the state_dict keys (and so checkpoints) stay the same
    o = cfg["optim"]
    opt = torch.optim.SGD(method.trainable_parameters(), lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"])
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=o["milestones"], gamma=o["gamma"])
    gen = torch.Generator(device=device).manual_seed(cfg["seed"])
    return Training(cfg, out, log, name, device, data, model, method, opt, sched, gen, bf16, channels_last)


def resume_or_restore(run: Training, supersede: bool, cache: Path | None, restore: bool) -> tuple[list[dict], dict | None]:
    """Where the run starts: (the epochs done, None), or (…, its final metrics) when it is finished
    already (found complete and current, or restored from a copy). A folder holding another config
    is refused or (``supersede``) moved aside; a stale run is moved aside; a checkpoint of this run
    is resumed; else the run starts from its ``init`` weights, if any. Writes ``config.json``."""
    cfg, out = run.cfg, run.out
    state, note = load_latest(out)
    state = runcache.resumable(state, out, run.log, run.name)  # a half restore is taken back; a restored run's config is this clone's
    if note:
        run.say(note)
    if state is not None and not same_config(state["config"], cfg):
        if not supersede:
            raise ConfigError(f"{out}: holds a run with a different config; use another --out, or --supersede to move it aside")
        print(f"[{run.name}] the config changed: the previous run moved to {move_aside(out, 'its config changed')}; "
              "starting over", file=run.log)
        state = None
    stale = differences(state["config"].get("provenance"), cfg["provenance"]) if state is not None else []
    if stale:  # same config, but not what the current code would train from what it learns from now
        why = "; ".join(stale)
        print(f"[{run.name}] stale ({why}): the previous run moved to {move_aside(out, why)}; starting over", file=run.log)
        state = None
    if state is None and (restored := runcache.lookup(cfg, out, cache, run.log, run.name, restore)) is not None:
        return [], restored
    history: list[dict] = []
    if state is not None:
        run.method.load_state_dict(state["method"])
        run.opt.load_state_dict(state["optimizer"])
        run.sched.load_state_dict(state["scheduler"])
        restore_rng(state["rng"], run.gen, run.device, run.name, run.log)
        history = state["history"]
        if len(history) == cfg["epochs"] and (out / METRICS).exists():
            print(f"[{run.name}] already complete and current in {out}", file=run.log)
            save_json(cfg["provenance"], out / RECEIPT)  # the workflow deletes it before it reruns a job
            if restore:  # a store killed midway is done now: the run is whole, the cache may lack it
                runcache.store(cfg, out, cache, run.log, run.name, run.machine())
            return history, json.loads((out / METRICS).read_text())
        print(f"[{run.name}] resuming after epoch {len(history)} from its checkpoint in {out}", file=run.log)
    elif cfg["init"]:
        load_init(run.model, Path(cfg["init"]))
        print(f"[{run.name}] starting from the weights of {cfg['init']}", file=run.log)
    save_json(cfg, out / CONFIG)
    for warning in schedule_warnings(cfg):
        run.say(f"warning: {warning}")
    return history, None


def train_epochs(run: Training, history: list[dict]) -> None:
    """The epochs left: each trains, evaluates every network on the validation and test splits, then
    writes the checkpoint, the history and the progress, and prints one line. A non-finite training
    loss stops the run (:class:`Diverged`), its last good checkpoint kept."""
    cfg, device, method, opt = run.cfg, run.device, run.method, run.opt
    train_batches = loader(run.data, "train", cfg["batch_size"], device, cfg["dataset"]["augment"], shuffle=True)
    evals = {s: loader(run.data, s, cfg["eval_batch_size"], device) for s in ("val", "test")}
    write_progress(run.out, [h["seconds"] for h in history], cfg["epochs"])
    for epoch in range(len(history), cfg["epochs"]):
        t0 = time.perf_counter()
        method.train()
        loss_sum, correct = torch.zeros((), device=device), torch.zeros((), device=device)
        lr = opt.param_groups[0]["lr"]
        for x, y, index in train_batches.batches(run.gen, with_index=True):
            if run.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=run.bf16):
                loss, logits = method.loss(x, y, epoch, index=index) if method.uses_index else method.loss(x, y, epoch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
        run.sched.step()
        train_loss, train_correct = torch.stack([loss_sum, correct]).tolist()
        train_seconds = time.perf_counter() - t0
        n = len(train_batches)
        if not math.isfinite(train_loss):
            kept = f"its last good checkpoint (epoch {len(history)}) is kept" if history else "no checkpoint was written"
            raise Diverged(f"{run.out}: epoch {epoch + 1}: training loss is {train_loss}; run stopped, {kept}")
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": train_loss / n, "train_acc": 100.0 * train_correct / n}
        for prefix, net in method.networks().items():
            for split, batches in evals.items():
                row[f"{prefix}{split}_loss"], row[f"{prefix}{split}_acc"] = evaluate(net, batches.batches())
        row["seconds"] = time.perf_counter() - t0
        row["images_per_s"] = n / train_seconds
        history.append(row)
        save_epoch(run, history)
        run.say(f"epoch {epoch + 1}/{cfg['epochs']}  loss {row['train_loss']:.4f}  train {row['train_acc']:.2f}%  "
                f"val {row['val_acc']:.2f}%  test {row['test_acc']:.2f}%  lr {lr:g}  {row['seconds']:.1f}s  "
                f"{row['images_per_s']:.0f} img/s" + (f"  peer test {row['peer_test_acc']:.2f}%" if "peer_test_acc" in row else ""))


def save_epoch(run: Training, history: list[dict]) -> None:
    """The checkpoint (every RNG stream with it), the history and the progress after an epoch."""
    rng = {"torch": torch.get_rng_state(), "loader": run.gen.get_state(), "device": run.device.type}
    if run.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(run.device)
    save_checkpoint({"config": run.cfg, "method": run.method.state_dict(), "optimizer": run.opt.state_dict(),
                     "scheduler": run.sched.state_dict(), "rng": rng, "history": history}, run.out)
    save_parquet(history, run.out / HISTORY)
    write_progress(run.out, [h["seconds"] for h in history], run.cfg["epochs"])


def finish(run: Training, history: list[dict], cache: Path | None, restore: bool) -> dict:
    """The final metrics (both epoch protocols, for every network), then the receipt, then the store
    in the run cache."""
    save_parquet(history, run.out / HISTORY)  # again: a rerun may find only the checkpoint
    last = history[-1]
    metrics = {}
    for prefix in run.method.networks():
        metrics |= {f"{prefix}{k}": last[f"{prefix}{k}"] for k in ("val_loss", "val_acc", "test_loss", "test_acc")}
        metrics[f"{prefix}test_err"] = 100.0 - last[f"{prefix}test_acc"]
        metrics |= best_val_metrics(history, prefix)
    metrics |= {"train_loss": last["train_loss"], "train_acc": last["train_acc"], "epochs": len(history)}
    metrics |= run.method.run_metrics()
    save_json(metrics, run.out / METRICS)
    save_json(run.cfg["provenance"], run.out / RECEIPT)  # last: the workflow's sign that the run finished
    if restore:
        runcache.store(run.cfg, run.out, cache, run.log, run.name, run.machine())
    return metrics
