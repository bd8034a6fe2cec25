#!/usr/bin/env python3
"""The guide's labeling command: `python3 scripts/ocr/label_crops.py --crops-dir output/crops --output
data/ocr_training/labels.txt [--review]`.

A thin entry point over `platepilot label`; run it inside the project's venv
(`source .venv/bin/activate`). Installed with the package as the console script `label_crops`, which
works from any folder.
"""

from platepilot.cli import label_crops

if __name__ == "__main__":
    label_crops()
