"""CIFAR-100 (torchvision): 50,000 / 10,000 32x32 colour images of 100 fine classes, downloaded
into data/raw/cifar100 when online. Trained with CIFAR10's recipes (TAKD trains both alike)."""
from introspect.data import DATASETS, Source

from .cifar10 import CIFAR10, color_split

# torchvision's fine label names, in label order (its meta file's fine_label_names)
CLASSES = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can "
    "castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin "
    "elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster "
    "man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck "
    "pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk "
    "skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger "
    "tractor train trolleybus tulip turtle wardrobe whale willow_tree wolf woman worm"
).split()


@DATASETS.register("cifar100")
class CIFAR100(Source):
    channels, size, augment = 3, 32, "crop_flip"
    classes = tuple(CLASSES)
    recipes = CIFAR10.recipes  # the very same recipes, not a copy

    def fetch(self, raw):
        return {split: color_split("CIFAR100", raw, "cifar100", train) for split, train in (("train", True), ("test", False))}
