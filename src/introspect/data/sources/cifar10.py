"""CIFAR10 (torchvision): 50,000 / 10,000 32x32 colour images of 10 classes; the paper's recipes.

The paper's recipes (Sec. 3, 5 and 5.1.2). Weight decay is not stated: the paper only says LE is
"regularized by ... a common weight-decay term", so every recipe has TAKD's 1e-4.
"""
import numpy as np
import torch

from introspect.data import DATASETS, Source, torchvision_split


def color_split(cls_name: str, raw, name: str, train: bool):
    """(x uint8 [N, 3, H, W], y int64) of a torchvision reader holding HWC uint8 ``data`` and ``targets``."""
    ds = torchvision_split(cls_name, raw, name, train=train)
    x = torch.from_numpy(np.asarray(ds.data)).permute(0, 3, 1, 2).contiguous()
    return x, torch.as_tensor(ds.targets, dtype=torch.int64)


@DATASETS.register("cifar10")
class CIFAR10(Source):
    channels, size, augment = 3, 32, "crop_flip"
    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    recipes = {
        "resnet": dict(epochs=160, batch_size=128, optim=dict(lr=0.1, milestones=[80, 120], weight_decay=1e-4)),
        "cnn": dict(epochs=160, batch_size=128, optim=dict(lr=0.01, milestones=[], weight_decay=1e-4)),
    }

    def fetch(self, raw):
        return {split: color_split("CIFAR10", raw, "cifar10", train) for split, train in (("train", True), ("test", False))}
