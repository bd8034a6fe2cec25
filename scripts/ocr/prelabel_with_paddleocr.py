#!/usr/bin/env python3
"""The guide's pre-labeling command: `python3 scripts/ocr/prelabel_with_paddleocr.py --crops-dir output/crops
--output data/ocr_training/labels.txt`.

A thin entry point over `platepilot prelabel` (default engine `auto`: the best measured reader, usually
the PaddleOCR-based PlateOCR ensemble the script is named after). Installed with the package as the
console script `prelabel_with_paddleocr`, which works from any folder.
Pre-labels go to `<output>.meta.jsonl` as suggestions; labels.txt only gets what a human confirms.
"""

from platepilot.cli import prelabel_with_paddleocr

if __name__ == "__main__":
    prelabel_with_paddleocr()
