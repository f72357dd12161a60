"""CIFAR10: 50,000 / 10,000 32x32 colour images of 10 classes; the paper's recipes.

Read offline from torchvision's files, a folder of PNGs per class or a parquet export
(:mod:`introspect.data.layouts`), in one canonical order; torchvision's download is tried only when
none is there. The paper's recipes (Sec. 3, 5 and 5.1.2). Weight decay is not stated: the paper only
says LE is "regularized by ... a common weight-decay term", so every recipe has TAKD's 1e-4. Inputs are
standardized per channel by the training split's mean and std (``dataset.scaling: standardize``), the
common practice for CIFAR10 (the paper does not say what it did).
"""
from introspect.data import DATASETS, Source
from introspect.data.layouts import how_to_get, layout_present, read_fixed_size


@DATASETS.register("cifar10")
class CIFAR10(Source):
    channels, size, augment = 3, 32, "crop_flip"
    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    recipes = {
        "resnet": dict(epochs=160, batch_size=128, optim=dict(lr=0.1, milestones=[80, 120], weight_decay=1e-4),
                       dataset=dict(scaling="standardize")),
        "cnn": dict(epochs=160, batch_size=128, optim=dict(lr=0.01, milestones=[], weight_decay=1e-4),
                    dataset=dict(scaling="standardize")),
    }
    # the registered name, torchvision's reader of it and the parquet export's label column
    name, torchvision_name, label_column = "cifar10", "CIFAR10", "label"

    def missing(self, raw):
        return None if layout_present(raw, self.torchvision_name) else how_to_get(raw, self.name, self.torchvision_name)

    def fetch(self, raw):
        return read_fixed_size(raw, self.name, self.torchvision_name, self.classes, self.channels, self.size,
                               self.label_column)
