"""digits: scikit-learn's bundled 8x8 digits, real and offline (the quick scale's CIFAR10 stand-in)."""
import numpy as np
import torch
from torch.nn import functional as F

from introspect.data import DATASETS, Source


@DATASETS.register("digits")
class Digits(Source):
    """scikit-learn's bundled 8x8 digits (1,797 images, real and offline), upsampled to 16x16 so
    every model family (CNN-10 has four 2x2 pools) runs on it; a fixed stratified 80/20 split."""

    channels, size = 1, 16
    classes = tuple(str(d) for d in range(10))
    # this project's own short recipe (any model); params.yaml's recipes.digits shortens it further
    recipes = {"*": dict(epochs=20, batch_size=64, optim=dict(lr=0.05, milestones=[15], weight_decay=5e-4))}

    def fetch(self, raw):
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        d = load_digits()
        x = torch.from_numpy(d.images).float().unsqueeze(1) / 16.0  # pixel values 0..16
        x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        x = (x * 255).round().clamp(0, 255).to(torch.uint8)
        y = torch.from_numpy(d.target).long()
        tr, te = train_test_split(np.arange(len(y)), test_size=0.2, stratify=d.target, random_state=0)
        return {"train": (x[tr], y[tr]), "test": (x[te], y[te])}
