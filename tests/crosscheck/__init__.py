"""Cross-checks against the PyTorch releases of the anchors (voxelmorph, neurite).

Skipped when `voxelmorph` / `neurite` are not installed; see docs/conventions.md.
"""
