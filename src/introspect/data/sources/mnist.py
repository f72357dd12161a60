"""MNIST (torchvision): 60,000 / 10,000 28x28 grey digits; the paper's MLP recipe (Sec. 5.1.2).
Weight decay is not stated; 1e-4 for every method alike, as on CIFAR10."""
import torch

from introspect.data import DATASETS, Source, torchvision_split


def grey_split(cls_name: str, raw, name: str, train: bool):
    """(x uint8 [N, 1, H, W], y int64) of a torchvision reader holding [N, H, W] ``data`` and ``targets``."""
    ds = torchvision_split(cls_name, raw, name, train=train)
    return ds.data.unsqueeze(1).to(torch.uint8), torch.as_tensor(ds.targets, dtype=torch.int64)


@DATASETS.register("mnist")
class MNIST(Source):
    channels, size = 1, 28
    classes = tuple(str(d) for d in range(10))
    recipes = {"mlp": dict(epochs=50, batch_size=16, optim=dict(lr=0.01, milestones=[], weight_decay=1e-4))}

    def fetch(self, raw):
        return {split: grey_split("MNIST", raw, "mnist", train) for split, train in (("train", True), ("test", False))}
