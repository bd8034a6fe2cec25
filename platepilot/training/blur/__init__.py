"""Training of the motion-blur estimator (`platepilot blur train`)."""

WIDTHS = (16, 32, 32, 64, 64, 64, 64)
"""BlurNet's default channels per layer (its strides are fixed; `model.STRIDES`). Here, not in model.py,
so that the command line can name them without importing torch."""
