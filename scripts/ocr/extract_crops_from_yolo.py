#!/usr/bin/env python3
"""The guide's YOLO crop extraction: `python3 scripts/ocr/extract_crops_from_yolo.py --datasets
datasets/plate_training_round2 datasets/plate_training --out data/ocr_training/extracted_crops`.

A thin entry point over `platepilot extract-yolo`; run it inside the project's venv.
Installed with the package as the console script `extract_crops_from_yolo`, which works from any folder.
"""

from platepilot.cli import extract_crops_from_yolo

if __name__ == "__main__":
    extract_crops_from_yolo()
