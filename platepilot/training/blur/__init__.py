"""Training of the motion-blur estimator (`platepilot blur train`)."""

WIDTHS = (8, 16, 16, 32, 32, 32, 32)
"""BlurNet's default channels per layer (its strides are fixed; `model.STRIDES`), the bundled model's.
Twice as wide (16, 32, 32, 64, ...) read blurred plates a little better and cost the reader far more
time (docs/plateocr.md). Here, not in model.py, so that the command line names them without torch."""
