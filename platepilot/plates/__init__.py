"""Plate domain knowledge: charset and normalisation, plate formats, the synthetic plate renderer."""
