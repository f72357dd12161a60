"""CIFAR-100: 50,000 / 10,000 32x32 colour images of 100 fine classes, read from the layouts CIFAR10
is read from (torchvision's files, a folder per class, a parquet export with ``fine_label``),
downloaded into data/raw/cifar100 only when none is there. Trained with CIFAR10's recipes (TAKD
trains both alike)."""
from introspect.data import DATASETS

from .cifar10 import CIFAR10

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
class CIFAR100(CIFAR10):
    classes = tuple(CLASSES)  # the recipes and the reading are CIFAR10's (inherited, not copied)
    name, torchvision_name, label_column = "cifar100", "CIFAR100", "fine_label"
