"""Datasets: a registry of sources, ``prepare`` to one checksummed tensor file, a device-resident loader.

- :mod:`.base`: :data:`DATASETS`, :class:`Source` (what a dataset declares), :class:`DataError`;
- :mod:`.prepared`: ``prepare`` and ``load_prepared`` (splits, statistics, checksum);
- :mod:`.device`: the loader that keeps a split on the training device and augments there;
- :mod:`.download`: torchvision's readers, one line when offline; :mod:`.folder`: an image folder;
- ``sources/``: one file per dataset, every one imported here in name order, so that its
  ``@DATASETS.register`` runs: a new dataset is a new file in that folder and nothing else.
"""
import importlib
import pkgutil

from .base import DATASETS, SPLITS, DataError, Source
from .device import AUGMENTATIONS, DeviceLoader, augment_batch, loader, pick_device, speed_settings
from .download import torchvision_split
from .folder import Folder
from .prepared import SCALINGS, checksum, for_run, load_prepared, prepare, stratified_split, subset_counts

from . import sources  # noqa: E402  (after the names a source file imports from this package)

for _module in sorted(m.name for m in pkgutil.iter_modules(sources.__path__)):
    importlib.import_module(f"{sources.__name__}.{_module}")

__all__ = ["AUGMENTATIONS", "DATASETS", "SPLITS", "DataError", "DeviceLoader", "Folder", "Source", "augment_batch",
           "SCALINGS", "checksum", "for_run", "load_prepared", "subset_counts", "loader", "pick_device", "prepare", "speed_settings", "stratified_split",
           "torchvision_split"]
