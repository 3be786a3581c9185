"""Keras layers: thin wrappers that draw parameters and apply `synthlayers.ops`."""

from synthlayers.layers.random_affine import RandomAffine
from synthlayers.layers.random_deformation import RandomDeformation
from synthlayers.layers.random_spatial_transform import RandomSpatialTransform
from synthlayers.layers.spatial_transformer import IntegrateVelocity
from synthlayers.layers.spatial_transformer import SpatialTransformer
