"""torchvision's dataset readers, downloading once when the files are absent: one DataError line
(the path, and the command to run where there is internet) when they are absent and offline."""
from __future__ import annotations

from pathlib import Path

from .base import DataError


def torchvision_split(cls_name: str, raw: Path, name: str, **split):
    """torchvision.datasets.<cls_name>(raw, **split), downloaded into ``raw`` if it is not there yet.
    ``split``: the reader's own split argument (``train=True`` or, for SVHN, ``split="test"``)."""
    import torchvision

    cls = getattr(torchvision.datasets, cls_name)
    try:
        return cls(str(raw), download=False, **split)
    except RuntimeError:
        pass  # not there yet: try to download it once
    try:
        return cls(str(raw), download=True, **split)
    except Exception as exc:  # offline, or a broken archive
        raise DataError(
            f"{raw}: no {cls_name} there and it could not be downloaded ({type(exc).__name__}); "
            f"on a machine with internet run `introspect prepare --dataset {name} --raw {raw.parent}` "
            f"or copy torchvision's {cls_name} files into {raw}"
        ) from None
