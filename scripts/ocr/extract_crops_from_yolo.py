#!/usr/bin/env python3
"""The guide's YOLO crop extraction: `python3 scripts/ocr/extract_crops_from_yolo.py --datasets
datasets/plate_training_round2 datasets/plate_training --out data/ocr_training/extracted_crops`.

A thin entry point over `platepilot extract-yolo`; run it inside the project's venv.
"""

import sys

from platepilot.cli import main

if __name__ == "__main__":
    sys.argv = ["platepilot", "extract-yolo", *sys.argv[1:]]
    main()
