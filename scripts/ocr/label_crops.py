#!/usr/bin/env python3
"""The guide's labeling command: `python3 scripts/ocr/label_crops.py --crops-dir output/crops --output
data/ocr_training/labels.txt [--review]`.

A thin entry point over `platepilot label`; run it inside the project's venv (`source .venv/bin/activate`).
"""

import sys

from platepilot.cli import main

if __name__ == "__main__":
    sys.argv = ["platepilot", "label", *sys.argv[1:]]
    main()
