"""Plate tracking per camera, crop quality, best-crop selection."""
