"""OCR engines behind one protocol: the CRNN service (onnxruntime), CTC decoding, scoring."""
