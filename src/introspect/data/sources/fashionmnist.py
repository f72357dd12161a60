"""Fashion-MNIST (torchvision): 60,000 / 10,000 28x28 grey images of 10 kinds of clothing,
downloaded into data/raw/fashionmnist when online. No recipe is declared (the LE paper trains
none on it): give one in params.yaml, recipes.fashionmnist."""
from introspect.data import DATASETS, Source

from .mnist import grey_split


@DATASETS.register("fashionmnist")
class FashionMNIST(Source):
    channels, size = 1, 28
    classes = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")

    def fetch(self, raw):
        return {split: grey_split("FashionMNIST", raw, "fashionmnist", train)
                for split, train in (("train", True), ("test", False))}
