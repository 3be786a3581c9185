"""RandomResolution: SynthSeg's acquisition model with static shapes."""

import keras
import numpy as np
from keras import ops

from synthlayers.layers.base import IMAGES
from synthlayers.layers.base import BaseRandomLayer
from synthlayers.layers.base import batch_size_of
from synthlayers.layers.base import spatial_shape_of
from synthlayers.layers.sampling import draw_from_ranges
from synthlayers.layers.sampling import draw_mask
from synthlayers.layers.sampling import where_mask
from synthlayers.ops.filters import gaussian_kernel_matrix
from synthlayers.ops.random import materialize
from synthlayers.ops.resize import apply_along_axis
from synthlayers.validation import broadcast_per_axis
from synthlayers.validation import check_number
from synthlayers.validation import check_per_axis
from synthlayers.validation import check_probability
from synthlayers.validation import parse_range

# SynthSeg (lab2im `blurring_sigma_for_downsampling`): sigma = 0.75 * slab / res.
SIGMA_COEFFICIENT = 0.75


def blurring_sigma(spacing, thickness):
    """Gaussian sigma (voxels) simulating slices of `thickness` every `spacing`.

    SynthSeg's rule for a 1 voxel input resolution: `sigma = 0.75 *
    min(spacing, thickness)`, except 0 (no blur) where `min(spacing,
    thickness) == 1` (SynthSeg used 0.5 there).
    """
    slab = ops.minimum(spacing, thickness)
    return ops.where(slab > 1, SIGMA_COEFFICIENT * slab, 0.0)


def resolution_matrices(spacing, sigma, length):
    """Per-sample 1-D operators of low-resolution acquisition along one axis.

    The low-resolution lattice has points at `k * spacing` (input voxel
    units), `k = 0 .. floor((length - 1) / spacing)`; as `spacing` is a
    tensor the count is dynamic, so the lattice axis is padded to the static
    maximum `length` (reached for `spacing == 1`) and the padded points get
    zero weights.

    Returns `(down, up)`, two `(batch, length, length)` float32 tensors:
    `down[b, k, i]` takes lattice value `k` from input voxel `i` (Gaussian
    blur of `sigma`, then linear interpolation at `k * spacing`);
    `up[b, x, k]` interpolates output voxel `x` linearly from the lattice
    (constant beyond the last lattice point). `up @ down` is the whole
    acquisition; `spacing == 1` and `sigma == 0` give identities exactly.
    """
    spacing = ops.reshape(ops.cast(spacing, "float32"), (-1, 1, 1))
    index = ops.arange(length, dtype="float32")
    rows = ops.reshape(index, (1, length, 1))
    columns = ops.reshape(index, (1, 1, length))
    last = ops.floor((length - 1) / spacing)
    # up: output x sits at lattice coordinate x / spacing, clamped to the last point.
    position = ops.minimum(rows / spacing, last)
    up = ops.relu(1.0 - ops.abs(position - columns))
    # sample: lattice point k sits at input position k * spacing (rows past
    # the last point fall outside and get zero weights, or the clamped edge).
    position = ops.minimum(rows * spacing, float(length - 1))
    sample = ops.relu(1.0 - ops.abs(position - columns))
    blur = gaussian_kernel_matrix(sigma, length)
    return ops.matmul(sample, blur), up


@keras.saving.register_keras_serializable(package="synthlayers")
class RandomResolution(BaseRandomLayer):
    """Simulate a random low-resolution acquisition (slice spacing, thickness).

    SynthSeg's acquisition model: each sample is blurred as if acquired with
    thick slices, sampled on a coarser lattice, and interpolated back to the
    input grid, so the output keeps the input shape (static) but loses the
    detail a low-resolution scan would not have.

    Spacing and thickness are in voxels of the input (mm for a 1 mm input).
    Per sample, with probability `isotropic_probability`, one spacing
    `s ~ U(1, max_spacing)` is used for all axes (really the same value on
    every axis; SynthSeg drew its "isotropic" resolution per axis);
    otherwise one random axis gets `s ~ U(1, max_spacing)` and the others
    keep the input spacing 1. The slice thickness of each axis is
    `t ~ U(1, s)`. With `data_spacing` (and optionally `thickness`), the
    spacing and thickness are fixed instead (a known target acquisition).

    Along each axis, with `slab = min(s, t)`:
    - blur with a Gaussian of `sigma = 0.75 * slab` voxels (SynthSeg's
      `blurring_sigma_for_downsampling` in lab2im `edit_tensors.py`,
      `sigma = 0.75 * slab / current_res` with `current_res = 1`), or no blur
      where `slab == 1` (SynthSeg used 0.5 there, which would blur images at
      full resolution; we keep them exact). SynthSeg's random jitter of
      sigma by a factor in `[1/1.03, 1.03]` is left out;
    - sample the blurred image linearly at the lattice points `k * s`,
      `k = 0 .. floor((n - 1) / s)`;
    - optionally add Gaussian noise to the lattice values (`noise_std`);
    - interpolate linearly back to the `n` input voxels (constant beyond the
      last lattice point).
    The three steps are linear, so along each axis they are fused into one
    dense `(n, n)` matrix per sample, built in the graph from the drawn
    spacing and thickness (the lattice padded to the static maximum of `n`
    points), and applied with one batched matrix product per axis
    (`synthlayers.ops.apply_along_axis`). Label maps pass through unchanged.

    Reference:
        Billot et al., "SynthSeg: Segmentation of brain MRI scans of any
        contrast and resolution without retraining", Medical Image Analysis
        86, 2023.

    Args:
        max_spacing: largest slice spacing drawn, in input voxels, >= 1
            (SynthSeg's `max_res_iso` / `max_res_aniso`). Defaults to `9.0`.
        isotropic_probability: chance that a sample gets the same low
            resolution on all axes instead of one low-resolution axis.
            Defaults to `0.1` (SynthSeg's `prob_iso`).
        data_spacing: `None` (random spacing), or the fixed spacing of the
            target acquisition: a number >= 1 or one per spatial axis.
            Defaults to `None`.
        thickness: with `data_spacing` only: the fixed slice thickness, a
            number >= 1 or one per spatial axis (values above the spacing act
            as the spacing). `None` means equal to `data_spacing`. Defaults
            to `None`.
        noise_std: range of the standard deviation of Gaussian noise added at
            low resolution (to the lattice values), in image intensity units;
            a number `x` means `(0, x)`. Defaults to `0.0` (no noise).
        probability: chance that a sample is degraded at all (SynthSeg's
            `prob_min = 0.05` is `probability=0.95`). Defaults to `1.0`.
        seed: integer seed of the layer's `SeedGenerator`. Defaults to `None`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        data: images, an integer label map, or a dict with `"images"` and/or
            `"segmentation_masks"`.
        training: if `False`, return the input unchanged. Defaults to `True`.

    Input shape:
        `(batch, *spatial, channels)` with 2 or 3 spatial axes; the spatial
        shape must be static when the layer runs.

    Output shape:
        Same as the input. Images in the layer's compute dtype (computed in
        float32), label maps unchanged.

    Example:

    >>> import numpy as np
    >>> layer = RandomResolution(max_spacing=6.0, seed=0)
    >>> images = np.random.default_rng(0).normal(size=(2, 32, 32, 32, 1))
    >>> tuple(layer(images.astype("float32")).shape)
    (2, 32, 32, 32, 1)
    """

    def __init__(
        self,
        max_spacing=9.0,
        isotropic_probability=0.1,
        data_spacing=None,
        thickness=None,
        noise_std=0.0,
        probability=1.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        self.max_spacing = check_number(max_spacing, "max_spacing", min_value=1.0)
        self.isotropic_probability = check_probability(
            isotropic_probability, "isotropic_probability"
        )
        self.data_spacing = check_per_axis(
            data_spacing, "data_spacing", min_value=1.0, allow_none=True
        )
        self.thickness = check_per_axis(
            thickness, "thickness", min_value=1.0, allow_none=True
        )
        if self.thickness is not None and self.data_spacing is None:
            raise ValueError(
                "`thickness` needs a fixed `data_spacing` (in random mode the "
                f"thickness is drawn). Received: thickness={thickness!r}, "
                "data_spacing=None"
            )
        if (
            self.thickness is not None
            and len(self.thickness) > 1
            and len(self.data_spacing) > 1
            and len(self.thickness) != len(self.data_spacing)
        ):
            raise ValueError(
                "`thickness` must have as many entries as `data_spacing`. "
                f"Received: thickness={thickness!r}, data_spacing={data_spacing!r}"
            )
        self.noise_std = parse_range(
            noise_std, "noise_std", "nonnegative", min_value=0.0
        )
        self.probability = check_probability(probability)

    def _draw_spacing(self, seed, batch_size, ndim):
        if self.data_spacing is not None:
            thickness = self.thickness or self.data_spacing
            spacing = broadcast_per_axis(self.data_spacing, ndim, "data_spacing")
            thickness = broadcast_per_axis(thickness, ndim, "thickness")
            spacing = ops.convert_to_tensor(np.array(spacing, "float32"))
            thickness = ops.convert_to_tensor(np.array(thickness, "float32"))
            ones = ops.ones((batch_size, 1), "float32")
            return ones * spacing, ones * thickness
        ranges = [(1.0, self.max_spacing)]
        isotropic = ops.repeat(draw_from_ranges(seed, batch_size, ranges), ndim, axis=1)
        value = draw_from_ranges(seed, batch_size, ranges)
        axis = keras.random.randint((batch_size,), 0, ndim, seed=seed)
        anisotropic = 1.0 + ops.one_hot(axis, ndim, dtype="float32") * (value - 1.0)
        is_isotropic = keras.random.uniform((batch_size, 1), seed=seed)
        is_isotropic = is_isotropic < self.isotropic_probability
        spacing = ops.where(is_isotropic, isotropic, anisotropic)
        fraction = keras.random.uniform((batch_size, ndim), seed=seed)
        thickness = 1.0 + fraction * (spacing - 1.0)
        return spacing, thickness

    def get_random_transformation(self, data, training=True, seed=None):
        if not training or IMAGES not in data:
            return None
        seed = self.seed_generator_for(seed)
        images = data[IMAGES]
        ndim = len(images.shape) - 2
        batch_size = batch_size_of(data)
        spacing, thickness = self._draw_spacing(seed, batch_size, ndim)
        mask = draw_mask(seed, batch_size, self.probability)
        transformation = {
            "spacing": where_mask(mask, spacing, 1.0),
            "thickness": where_mask(mask, thickness, 1.0),
        }
        if self.noise_std[1] > 0:
            std = draw_from_ranges(seed, batch_size, [self.noise_std])
            std = ops.reshape(where_mask(mask, std, 0.0), (-1,) + (1,) * (ndim + 1))
            noise = keras.random.normal(ops.shape(images), seed=seed)
            transformation["noise"] = std * noise
        return transformation

    def transform_images(self, images, transformation, training=True):
        if transformation is None:
            return images
        shape = spatial_shape_of({IMAGES: images}, self.__class__.__name__)
        x = ops.cast(images, "float32")
        noise = transformation.get("noise")
        spacing, thickness = transformation["spacing"], transformation["thickness"]
        # Materialised: XLA would otherwise recompute the draws per matrix entry.
        spacing = materialize(spacing)
        sigma = materialize(blurring_sigma(spacing, thickness))
        for axis, length in enumerate(shape):
            down, up = resolution_matrices(spacing[:, axis], sigma[:, axis], length)
            x = apply_along_axis(x, ops.matmul(up, down), axis)
            if noise is not None:
                noise = apply_along_axis(noise, up, axis)
        if noise is not None:
            x = x + noise
        return x

    def get_config(self):
        config = super().get_config()
        config.update(
            max_spacing=self.max_spacing,
            isotropic_probability=self.isotropic_probability,
            data_spacing=None if self.data_spacing is None else list(self.data_spacing),
            thickness=None if self.thickness is None else list(self.thickness),
            noise_std=list(self.noise_std),
            probability=self.probability,
        )
        return config
