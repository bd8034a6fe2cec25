#!/usr/bin/env python3
"""The guide's pre-labeling command: `python3 scripts/ocr/prelabel_with_paddleocr.py --crops-dir output/crops
--output data/ocr_training/labels.txt`.

A thin entry point over `platepilot prelabel` (default engine `auto`). The name is the guide's: the
PaddleOCR-based ensemble (PlateOCR) is not built yet, so for now `auto` reads with the CRNN plate reader.
Pre-labels go to `<output>.meta.jsonl` as suggestions; labels.txt only gets what a human confirms.
"""

import sys

from platepilot.cli import main

if __name__ == "__main__":
    sys.argv = ["platepilot", "prelabel", *sys.argv[1:]]
    main()
