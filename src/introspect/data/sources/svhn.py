"""SVHN (torchvision): 73,257 / 26,032 32x32 colour house-number digits (the train and test
splits; not the extra one), downloaded into data/raw/svhn when online. Random crops, no flips
(a flipped digit is another glyph). No recipe is declared (the LE paper trains none on it): give
one in params.yaml, recipes.svhn."""
import torch

from introspect.data import DATASETS, Source, torchvision_split


@DATASETS.register("svhn")
class SVHN(Source):
    channels, size, augment = 3, 32, "crop"
    classes = tuple(str(d) for d in range(10))

    def fetch(self, raw):
        out = {}
        for split in ("train", "test"):
            ds = torchvision_split("SVHN", raw, "svhn", split=split)
            out[split] = (torch.from_numpy(ds.data).to(torch.uint8), torch.as_tensor(ds.labels, dtype=torch.int64))
        return out
