"""A student of a same-architecture teacher starts from weights of its own (BAN trains every
generation from scratch), while the data order of a seed stays the same for every row."""
import json

import torch

from introspect.config import resolve
from introspect.methods.runs import build
from introspect.train import init_seed, teacher_depth


def cfg(synthetic_path, method):
    return resolve({"dataset": {"name": "synthetic", "path": str(synthetic_path)}, "model": "resnet8",
                    "method": method, "epochs": 1, "device": "cpu", "seed": 3})


def initial_weights(c):
    torch.manual_seed(init_seed(c))
    model, _ = build(c)
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_a_ban_student_does_not_start_from_its_teachers_initial_weights(tmp_path, synthetic_path, teacher_run):
    teacher = cfg(synthetic_path, "ce")
    student = cfg(synthetic_path, {"name": "ban", "teacher": str(teacher_run)})
    assert (teacher_depth(teacher), teacher_depth(student)) == (0, 1)
    assert init_seed(teacher) == 3 and init_seed(student) == 3 + 1_000_003
    assert not torch.equal(initial_weights(teacher), initial_weights(student))
    # a second generation (a student of that student) draws from a third stream
    gen2 = tmp_path / "gen2"
    gen2.mkdir()
    (gen2 / "config.json").write_text(json.dumps(student))
    grandchild = cfg(synthetic_path, {"name": "ban", "teacher": str(gen2)})
    assert teacher_depth(grandchild) == 2 and init_seed(grandchild) == 3 + 2 * 1_000_003


def test_every_row_of_a_seed_sees_the_same_batches(tmp_path, synthetic_path, teacher_run):
    from introspect.data import load_prepared, loader

    data = load_prepared(synthetic_path)
    orders = []
    for c in (cfg(synthetic_path, "ce"), cfg(synthetic_path, {"name": "ban", "teacher": str(teacher_run)})):
        torch.manual_seed(init_seed(c))
        build(c)
        gen = torch.Generator().manual_seed(c["seed"])  # what train() seeds the loader with
        batches = loader(data, "train", 16, torch.device("cpu"), "none", shuffle=True)
        orders.append(torch.cat([i for _, _, i in batches.batches(gen, with_index=True)]))
    assert torch.equal(orders[0], orders[1])
