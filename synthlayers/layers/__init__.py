"""Keras layers: thin wrappers that draw parameters and apply `synthlayers.ops`."""

from synthlayers.layers.labels import OneHot
from synthlayers.layers.labels import RemapLabels
from synthlayers.layers.random_affine import RandomAffine
from synthlayers.layers.random_deformation import RandomDeformation
from synthlayers.layers.random_flip import RandomFlip
from synthlayers.layers.random_spatial_transform import RandomSpatialTransform
from synthlayers.layers.spatial_transformer import IntegrateVelocity
from synthlayers.layers.spatial_transformer import SpatialTransformer
