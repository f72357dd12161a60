"""The experiment config (params.yaml): validate it, pick a scale, expand it into runs.

Used by the Snakemake workflow (workflow/rules/common.smk) to build the DAG and by the report to
know which runs make which table. A run is named by what it is,
``{dataset}/{model}/{variant}/seed{n}``, where ``variant`` is a table row's label, with
``-{value}`` appended for a member of a sweep. The same run named by two tables is trained once.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .config import read_yaml, resolve, schema_problem
from .data import DATASETS
from .explain import build_explainer
from .methods import METHODS
from .registry import ConfigError
from .scales import REQUIRED, SCALES, at_scale  # noqa: F401  (at_scale: part of this module's interface)
from .methods.runs import build

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


@dataclass(frozen=True)
class Run:
    dataset: str
    model: str
    variant: str
    seed: int
    config: dict = field(compare=False, hash=False)  # the user config handed to `introspect train`
    needs: tuple[str, ...] = field(default=(), compare=False, hash=False)  # runs to finish first (teacher, init)
    # ``config`` resolved (introspect.config.resolve), once, when the plan is expanded: what the plan's
    # estimates, the staleness check and the report read
    resolved: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def id(self) -> str:
        return run_id(self.dataset, self.model, self.variant, self.seed)


def run_id(dataset: str, model: str, variant: str, seed: int) -> str:
    """A run's id, also the path of its folder under results/: ``{dataset}/{model}/{variant}/seed{seed}``."""
    return f"{dataset}/{model}/{variant}/seed{seed}"


@dataclass(frozen=True)
class Teacher:
    """A dedicated teacher: the runs ``{dataset}/{model}/{variant}/seed{n}``, trained with ``method``."""

    model: str
    variant: str
    method: str


@dataclass
class Row:
    label: str
    method: str
    sweep_key: str | None
    variants: dict[str, object]  # variant -> swept value (None when no sweep)
    assistants: dict[str, str] = field(default_factory=dict)  # TAKD: student model -> assistant model
    teacher: Teacher | None = None  # the row's own dedicated teacher, when it is not the table's


@dataclass
class Table:
    name: str
    caption: str
    paper_table: str
    paper_dataset: str
    dataset: str
    metric: str
    models: list[str]
    rows: list[Row]
    teacher: Teacher | None = None  # the table's dedicated teacher runs
    columns: list[str] = field(default_factory=list)  # more per-model columns: params, samples_used
    notes: dict[str, str] = field(default_factory=dict)  # row label -> a note printed under the table


@dataclass
class Plan:
    scale: str
    seeds: list[int]
    significance: float
    tables: list[Table]
    runs: dict[str, Run]
    explanations: dict[str, Run]  # paper dataset -> the run whose example maps make Figure 1 (one seed)
    protocol: str = "last"  # which test accuracy tables and verdicts use: the last epoch's or the best-val epoch's
    explainers: dict[str, str | None] = field(default_factory=dict)  # paper dataset -> its figures' explainer (None: the run's own)
    # paper dataset -> the explained row's runs, one per seed (Figure 1's among them), each with its own
    # explanations.pt: Figure 2 and claim C10 average their class-similarity matrices
    explained: dict[str, list[Run]] = field(default_factory=dict)
    train_jobs: str = "row"  # one train job per table row (its seeds in turn) or per run ("seed")

    def shown(self, table: Table) -> set[str]:
        """The ids of the runs ``table`` shows (its rows' variants on its models, every seed); not the
        teachers, assistants and stages it learns from."""
        ids = {run_id(table.dataset, m, v, s) for r in table.rows for m in table.models for v in r.variants
               for s in self.seeds}
        return ids & set(self.runs)

    def explainer_of(self, run_id: str) -> str | None:
        """The explainer of the Figures 1-2 maps of run ``run_id`` (None: the run's own)."""
        return next(self.explainers.get(ds) for ds, runs in self.explained_runs().items() if run_id in {r.id for r in runs})

    def missing_data(self, raw: Path = Path("data/raw")) -> list[str]:
        """One line per dataset of this plan that is neither prepared (its data/processed file) nor
        readable offline from ``raw``: where its files go and how to get them."""
        paths = {r.dataset: r.resolved["dataset"]["path"] for r in self.runs.values()}
        return [line for ds, path in sorted(paths.items())
                if not Path(path).is_file() and (line := DATASETS.get(ds)().missing(Path(raw) / ds)) is not None]

    def explained_runs(self) -> dict[str, list[Run]]:
        """Paper dataset -> every run whose explanations.pt is computed (``explained``; a plan built by
        hand with only ``explanations`` explains that one run)."""
        return {ds: self.explained.get(ds) or [run] for ds, run in self.explanations.items()}


def table_notes(name: str, table: dict, rows: list[Row]) -> dict[str, str]:
    """A table's notes at this scale (already resolved), by row label; a note for no row is an error."""
    notes = {label: text for label, text in (table.get("notes") or {}).items() if text}
    unknown = sorted(set(notes) - {r.label for r in rows})
    if unknown:
        raise ConfigError(f"tables.{name}.notes.{unknown[0]}: no such row; rows: {', '.join(r.label for r in rows)}")
    return notes


def check_schema(params: dict, schema_path: Path = SCHEMA) -> None:
    """Structure and types against workflow/schemas/config.schema.yaml: one line naming the key."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    defs = schema.get("$defs", {})
    if "scale" in defs:  # the scales are introspect.scales' table, not spelled out in the schema
        defs["scale"]["enum"] = list(SCALES)
        defs["per_scale"]["required"] = list(REQUIRED)
    validator = jsonschema.Draft202012Validator(schema)
    error = next(iter(sorted(validator.iter_errors(params), key=lambda e: list(map(str, e.absolute_path)))), None)
    if error is not None:
        raise ConfigError(schema_problem(error))


def check_names(params: dict) -> None:
    """The keys of ``recipes`` name datasets and those of ``method_options`` methods: a typo there
    would otherwise leave the recipe or the options unused, silently. The values of ``datasets`` (at
    every scale) name datasets too: a typo is named there, not at the first run that uses it."""
    for paper_dataset, value in (params.get("datasets") or {}).items():
        scaled = value if isinstance(value, dict) else {"": value}
        for scale, name in scaled.items():
            if name is not None:
                DATASETS.get(name, f"datasets.{paper_dataset}" + (f".{scale}" if scale else ""))
    for name in params.get("recipes") or {}:
        DATASETS.get(name, f"recipes.{name}")
    for name in params.get("method_options") or {}:
        METHODS.get(name, f"method_options.{name}")


def set_dotted(cfg: dict, key: str, value) -> None:
    *path, leaf = key.split(".")
    node = cfg
    for part in path:
        node = node.setdefault(part, {})
    node[leaf] = value


def origins_of(value, where: str, key: str = "") -> dict[str, str]:
    """Where each leaf of a run's user config comes from in params.yaml, e.g. given a recipe
    ``{optim: {lr: -1}}`` at ``recipes.digits``: ``{"optim.lr": "recipes.digits.optim.lr"}``."""
    if not isinstance(value, dict):
        return {key: where} if key else {}
    out: dict[str, str] = {}
    for sub, v in value.items():
        out |= origins_of(v, f"{where}.{sub}", f"{key}.{sub}" if key else sub)
    return out


def placed(origins: dict[str, str], key: str, value, where: str | None) -> dict[str, str]:
    """``origins`` once the run's ``key`` is set to ``value`` from the params.yaml entry ``where``
    (None: set by the plan itself, a dataset or model name, a seed)."""
    kept = {k: w for k, w in origins.items() if k != key and not k.startswith(f"{key}.")}
    return kept | (origins_of(value, where, key) if where else {})


def at_origin(exc: ConfigError, key: str, origins: dict[str, str]) -> ConfigError:
    """``exc`` (``"optim.lr: expected ..."``) named at the params.yaml entry its value came from
    (``recipes.<dataset>``, ``method_options.<method>``, a row's ``set`` or ``sweep``), else prefixed
    with ``key``: the table row, teacher, stage or assistant the run belongs to."""
    text = str(exc)
    head, sep, rest = text.partition(": ")
    cuts = [len(head)] + [i for i in range(len(head) - 1, 0, -1) if head[i] in ".["] if sep else []
    for cut in cuts:  # the longest key that has an origin: optim.milestones[1] -> optim.milestones
        if head[:cut] in origins:
            return ConfigError(f"{origins[head[:cut]]}{head[cut:]}: {rest}")
    return ConfigError(f"{key}: {text}")


def variant_name(label: str, value) -> str:
    return label if value is None else f"{label}-{value}"


def plan(params: dict, scale: str | None = None, schema_path: Path = SCHEMA) -> Plan:
    """Validate ``params`` and expand it; every run's config is resolved (and so checked) here."""
    check_schema(params, schema_path)
    check_names(params)
    scale = scale or params["scale"]
    p = at_scale({k: v for k, v in params.items() if k != "scale"}, scale)
    expand = Expansion(p, scale)
    unknown = sorted(set() if p.get("select_tables", "all") == "all" else set(p["select_tables"]) - set(p["tables"]))
    if unknown:
        raise ConfigError(f"select_tables: {unknown[0]!r} is not a table; tables: {', '.join(p['tables'])}")
    tables = [table for name, t in p["tables"].items() if (table := expand.table(name, t)) is not None]
    explanations, explainers, explained = expand.explanations()
    return Plan(scale, list(p["seeds"]), float(p.get("significance", 0.05)), tables, expand.runs, explanations,
                p.get("protocol", "last"), explainers, explained, p.get("train_jobs", "row"))


class Expansion:
    """The runs of a validated params dict at one scale (``p``: :func:`at_scale`'s), built in three
    steps: a table's teachers (:meth:`teacher`), its rows (:meth:`table`, :meth:`row`), then the
    runs whose explanations the figures use (:meth:`explanations`). Every run goes through
    :meth:`add`, which resolves its config once per seed and builds it (the model and method:
    impossible combinations fail here) once per row and model."""

    def __init__(self, p: dict, scale: str):
        self.p, self.scale = p, scale
        self.runs: dict[str, Run] = {}

    def add(self, key: str, dataset: str, model: str, variant: str, method: str, sets: dict, teacher=None, init=None,
            places: dict[str, str] | None = None) -> None:
        """The runs of one row and model, a seed each. ``teacher(seed)``: the run id of the teacher
        for that seed (one teacher per student seed); ``init(seed)``: the run id whose final weights
        start this one (a FitNets / FSP stage); ``places``: where in params.yaml each of ``sets`` is
        given (default ``{key}.{set key}``)."""
        p = self.p
        needs_teacher = METHODS.get(method, f"{key}: method.name").needs_teacher
        if needs_teacher and teacher is None:
            raise ConfigError(f"{key}: method {method} needs a teacher; give the table teacher: {{model: NAME}} or {{row: LABEL}}")
        for seed in p["seeds"]:
            user = copy.deepcopy(p["recipes"].get(dataset, {}))
            origins = origins_of(user, f"recipes.{dataset}")
            # the recipe's own dataset / model keys (e.g. model.dropout) stay; the plan sets the names and the seed
            user |= {"dataset": {**user.get("dataset", {}), "name": dataset},
                     "model": {**user.get("model", {}), "name": model}, "seed": seed}
            for k in ("dataset.name", "model.name", "seed"):
                origins = placed(origins, k, None, None)
            options = p.get("method_options", {}).get(method, {})
            user["method"] = {"name": method, **options}
            origins = placed(origins, "method", options, f"method_options.{method}")
            for k, v in sets.items():
                set_dotted(user, k, v)
                origins = placed(origins, k, v, (places or {}).get(k, f"{key}.{k}"))
            needs = (teacher(seed),) if needs_teacher else ()
            if needs:
                user["method"]["teacher"] = f"results/{needs[0]}"
            if init is not None:
                needs += (init(seed),)
                user["init"] = f"results/{init(seed)}"
            try:
                resolved = resolve(user)
                if seed == p["seeds"][0]:  # the seeds' configs differ in the seed and the runs they learn from only
                    build(resolved)
            except ConfigError as exc:
                raise at_origin(exc, key, origins) from None
            run = Run(dataset, model, variant, seed, user, needs, resolved)
            if run.id in self.runs and self.runs[run.id].config != user:
                raise ConfigError(f"{key}: run {run.id} is already defined by another row with a different config")
            self.runs[run.id] = run

    def teacher(self, key: str, dataset: str, spec: dict) -> Teacher:
        """Add the runs of a teacher ``{model[, method, epochs]}``: variant "teacher" (ce) and, with a
        method, variant "teacher_<method>" (taught by the ce one if that method needs a teacher)."""
        method = spec.get("method", "ce")
        needs_teacher = METHODS.get(method, f"{key}.method").needs_teacher
        model = spec["model"]
        base = lambda seed: run_id(dataset, model, "teacher", seed)  # noqa: E731
        if method == "ce" or needs_teacher:
            self.add(key, dataset, model, "teacher", "ce", {})
        if method == "ce":
            return Teacher(model, "teacher", "ce")
        sets = {"epochs": spec["epochs"]} if "epochs" in spec else {}
        self.add(key, dataset, model, f"teacher_{method}", method, sets, base if needs_teacher else None)
        return Teacher(model, f"teacher_{method}", method)

    def table(self, name: str, t: dict) -> Table | None:
        """The table ``tables.<name>`` with the runs of its teacher and rows; None when it is not run
        at this scale."""
        p = self.p
        if t["dataset"] not in p["datasets"]:
            raise ConfigError(f"tables.{name}.dataset: {t['dataset']!r} is not in datasets; choices: {', '.join(p['datasets'])}")
        dataset = p["datasets"][t["dataset"]]
        selected = p.get("select_tables", "all")
        if dataset is None or self.scale not in t.get("scales", SCALES) or (selected != "all" and name not in selected):
            return None  # not at this scale: its paper dataset maps to ~ (datasets), its `scales` or select_tables leave it out
        spec = t.get("teacher") or {}
        teacher = self.teacher(f"tables.{name}.teacher", dataset, spec) if "model" in spec else None
        rows = [self.row(name, t, label, r, dataset, teacher) for label, r in t["rows"].items()
                if self.scale in r.get("scales", SCALES)]  # a row's own `scales` may leave it out
        return Table(name, t.get("caption", name), str(t.get("paper_table", name.removeprefix("table"))),
                     t["dataset"], dataset, t.get("metric", "test_acc"), t["models"], rows, teacher,
                     list(t.get("columns") or []), table_notes(name, t, rows))

    def row(self, name: str, t: dict, label: str, r: dict, dataset: str, table_teacher: Teacher | None) -> Row:
        """The runs of row ``label`` of table ``name`` for every model of the table: its teacher (the
        row's own, the table's, or another row's runs), its assistant or stage runs, then a run per
        swept value and seed."""
        key = f"tables.{name}.rows.{label}"
        spec, row_teacher = t.get("teacher") or {}, None
        if "teacher" in r:
            spec = r["teacher"]
            row_teacher = self.teacher(f"{key}.teacher", dataset, spec) if "model" in spec else None
        own = row_teacher or table_teacher
        sweep = r.get("sweep") or {}
        if len(sweep) > 1:
            raise ConfigError(f"{key}.sweep: one key per sweep, got {', '.join(sweep)}")
        (sweep_key, values), = sweep.items() if sweep else ((None, [None]),)
        if sweep and not values:
            raise ConfigError(f"{key}.sweep.{sweep_key}: empty list")
        variants = {variant_name(label, v): v for v in values}
        for model in t["models"]:
            teacher = None
            if own is not None:
                teacher = lambda seed, o=own: run_id(dataset, o.model, o.variant, seed)  # noqa: E731
            elif "row" in spec:
                if spec["row"] not in t["rows"] or t["rows"][spec["row"]].get("sweep"):
                    where = f"{key}.teacher" if "teacher" in r else f"tables.{name}.teacher"
                    raise ConfigError(f"{where}.row: {spec['row']!r} is not a row of this table without a sweep")
                teacher = lambda seed, m=model, row=spec["row"]: run_id(dataset, m, row, seed)  # noqa: E731
            if "assistant" in r:  # TAKD: teacher -> assistant (the row's method) -> this row's runs
                helper = r["assistant"].get(model)
                if helper is None:
                    raise ConfigError(f"{key}.assistant: no assistant for model {model}; given for: {', '.join(r['assistant'])}")
                self.add(f"{key}.assistant", dataset, helper, f"{label}_assistant", r["method"], {}, teacher)
                teacher = lambda seed, a=helper, v=f"{label}_assistant": run_id(dataset, a, v, seed)  # noqa: E731
            init = None
            if "stage" in r:  # FitNets / FSP: a stage run of its own whose weights start this row's runs
                stage = r["stage"]
                self.add(f"{key}.stage", dataset, model, f"{label}_stage", stage["method"], {"epochs": stage["epochs"]}, teacher)
                init = lambda seed, m=model, v=f"{label}_stage": run_id(dataset, m, v, seed)  # noqa: E731
            for variant, value in variants.items():
                sets = dict(r.get("set") or {})
                places = {k: f"{key}.set.{k}" for k in sets}
                if sweep_key:
                    sets[sweep_key] = value
                    places[sweep_key] = f"{key}.sweep.{sweep_key}"
                self.add(key, dataset, model, variant, r["method"], sets, teacher, init, places)
        return Row(label, r["method"], sweep_key, variants, dict(r.get("assistant") or {}), row_teacher)

    def explanations(self) -> tuple[dict[str, Run], dict[str, str | None], dict[str, list[Run]]]:
        """Per paper dataset explained at this scale: the run of Figure 1 (``seed``), its explainer,
        and the runs of Figure 2 and C10 (``seeds``); each must be a run of some table."""
        p, runs = self.p, self.runs
        explanations, explainers, explained = {}, {}, {}
        for paper_ds, e in (p.get("explanations") or {}).items():
            dataset = p["datasets"].get(paper_ds)
            if dataset is None and paper_ds in p["datasets"]:
                continue  # not run at this scale
            # Figure 2 and C10: the row's explanations at every seed of `seeds` (default: the scale's);
            # Figure 1: those of `seed` (default: the first of them)
            seeds = list(e.get("seeds") or p["seeds"])
            seed = e.get("seed", seeds[0])
            if seed not in seeds:
                raise ConfigError(f"explanations.{paper_ds}.seed: {seed} is not one of the explained seeds "
                                  f"({', '.join(map(str, seeds))}: explanations.{paper_ds}.seeds, else the scale's seeds)")
            ids = {s: run_id(dataset, e["model"], e["row"], s) for s in seeds}
            absent = [i for i in ids.values() if i not in runs]
            if absent:
                raise ConfigError(f"explanations.{paper_ds}: run {absent[0]} is not in any table")
            explained[paper_ds] = [runs[i] for i in ids.values()]
            explanations[paper_ds] = runs[ids[seed]]
            explainers[paper_ds] = e.get("explainer")
            if explainers[paper_ds] is not None:  # one the model can use: Grad-CAM needs a conv layer
                build_explainer(explainers[paper_ds], build(explanations[paper_ds].resolved)[0], f"explanations.{paper_ds}.explainer")
        return explanations, explainers, explained


def load(path: Path = Path("params.yaml"), scale: str | None = None, overrides: dict | None = None) -> Plan:
    params = read_yaml(Path(path))
    return plan({**params, **(overrides or {})}, scale)
