"""Training the CRNN plate reader (needs the `train` extra: torch, onnx, matplotlib)."""
