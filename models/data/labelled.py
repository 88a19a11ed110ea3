"""What every loader returns, and the checks that hold it to that.

A split is "train" or "test". Images are float32 in [0, 1]; labels are int64 class ids
0..9, one per image.
"""

import numpy as np

from .errors import DatasetError

SPLITS = ("train", "test")


def check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def check_labels(images_where, n_images, labels_where, labels):
    """Raise ``DatasetError`` unless ``labels`` holds one class id 0..9 per image."""
    if n_images != len(labels):
        raise DatasetError(
            f"images and labels differ in length: {n_images} images in {images_where}, "
            f"{len(labels)} labels in {labels_where}; expected one label per image"
        )
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(
            f"{labels_where}: labels must be class ids 0..9, found values from "
            f"{labels.min()} to {labels.max()}"
        )


def to_float_images(pixels):
    """uint8 pixels -> float32 in [0, 1], same shape."""
    # Divide by a float32 255: a Python or float64 scalar would be fine today, but the
    # intent (float32 out, no upcast) should not rest on numpy's promotion rules.
    return pixels.astype(np.float32) / np.float32(255)
