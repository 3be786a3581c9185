"""A brain-like label map made in code: no download, any shape, deterministic."""

import numpy as np

from synthlayers.validation import check_shape

# Labels of `phantom_label_map`, FreeSurfer-like values so that the same
# remapping tables can serve real and phantom maps.
PHANTOM_LABELS = {
    0: "background",
    24: "CSF",
    3: "left cerebral cortex",
    2: "left cerebral white matter",
    4: "left lateral ventricle",
    42: "right cerebral cortex",
    41: "right cerebral white matter",
    43: "right lateral ventricle",
    10: "left thalamus",
    49: "right thalamus",
}


def phantom_label_map(shape):
    """A deterministic brain-like label map of `shape` (2D or 3D), int32.

    Nested ellipsoids: CSF around a cortex ribbon around white matter, split
    into left and right hemispheres along the first axis, with lateral
    ventricles and thalami. Labels as in `PHANTOM_LABELS`; the map is
    mirror-symmetric along the first axis up to the left/right label swap.

    Args:
        shape: the spatial shape, 2 or 3 positive integers.

    Returns:
        An int32 array of `shape`.

    Raises:
        ValueError: when `shape` is not 2 or 3 positive integers.

    Example:

    >>> labels = phantom_label_map((32, 40))
    >>> labels.shape, labels.dtype.name, sorted(set(labels.ravel().tolist()))
    ((32, 40), 'int32', [0, 2, 3, 4, 10, 24, 41, 42, 43, 49])
    """
    shape = check_shape(shape, "shape")
    if len(shape) not in (2, 3):
        raise ValueError(f"`shape` must have 2 or 3 entries. Received: shape={shape}")
    # Open (broadcasting) grids keep memory at one label map, even at 256^3.
    axes = np.meshgrid(
        *[np.linspace(-1, 1, n, dtype="float32") for n in shape],
        indexing="ij",
        sparse=True,
    )
    radii = (0.62, 0.8, 0.7)[: len(shape)]

    def ellipsoid(scale, center=(0.0, 0.0, 0.0)):
        return (
            sum(((a - c) / (r * scale)) ** 2 for a, c, r in zip(axes, center, radii))
            <= 1
        )

    left = np.broadcast_to(axes[0] < 0, shape)
    out = np.zeros(shape, "int32")
    out[ellipsoid(1.2)] = 24
    inside = ellipsoid(1.0)
    out[inside] = np.where(left[inside], 3, 42)
    inside = ellipsoid(0.82)
    out[inside] = np.where(left[inside], 2, 41)
    for sign, ventricle, thalamus in ((-1, 4, 10), (1, 43, 49)):
        out[ellipsoid(0.22, (0.22 * sign, -0.15, 0.1))] = ventricle
        out[ellipsoid(0.16, (0.14 * sign, 0.25, -0.05))] = thalamus
    return out
