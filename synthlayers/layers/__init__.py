"""Keras layers: thin wrappers that draw parameters and apply `synthlayers.ops`."""

from synthlayers.layers.labels import OneHot
from synthlayers.layers.labels import RemapLabels
from synthlayers.layers.labels_to_image import LabelsToImage
from synthlayers.layers.labels_to_image_pair import LabelsToImagePair
from synthlayers.layers.normalize_intensity import NormalizeIntensity
from synthlayers.layers.random_affine import RandomAffine
from synthlayers.layers.random_bias_field import RandomBiasField
from synthlayers.layers.random_deformation import RandomDeformation
from synthlayers.layers.random_flip import RandomFlip
from synthlayers.layers.random_gamma import RandomGamma
from synthlayers.layers.random_gaussian_blur import RandomGaussianBlur
from synthlayers.layers.random_gaussian_mixture import RandomGaussianMixture
from synthlayers.layers.random_gaussian_noise import RandomGaussianNoise
from synthlayers.layers.random_label_map import RandomLabelMap
from synthlayers.layers.random_resolution import RandomResolution
from synthlayers.layers.random_spatial_transform import RandomSpatialTransform
from synthlayers.layers.spatial_transformer import IntegrateVelocity
from synthlayers.layers.spatial_transformer import SpatialTransformer
