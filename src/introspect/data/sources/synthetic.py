"""synthetic: a tiny generated set for the tests."""
import torch

from introspect.data import DATASETS, Source


@DATASETS.register("synthetic")
class Synthetic(Source):
    """A tiny generated set for tests: 10 classes, 3x16x16, each class a fixed random pattern plus
    noise, so a few epochs learn it. Fully determined by its seed."""

    channels, size, augment = 3, 16, "crop_flip"
    classes = tuple(f"c{k}" for k in range(10))
    recipes = {"*": dict(epochs=3, batch_size=32, optim=dict(lr=0.05, milestones=[], weight_decay=5e-4))}

    def fetch(self, raw, n_train: int = 400, n_test: int = 200):
        g = torch.Generator().manual_seed(1234)
        protos = torch.rand(len(self.classes), self.channels, self.size, self.size, generator=g)

        def draw(n):
            y = torch.arange(n) % len(self.classes)
            x = 0.6 * protos[y] + 0.4 * torch.rand(n, self.channels, self.size, self.size, generator=g)
            return (x * 255).to(torch.uint8), y

        return {"train": draw(n_train), "test": draw(n_test)}
