#!/usr/bin/env python3
"""The guide's training command: `python3 scripts/ocr/train_crnn.py --labels ... --output-dir ...`.

A thin entry point over `platepilot train`; run it inside the project's venv
(`source .venv/bin/activate`). Installed with the package as the console script `train_crnn`, which
works from any folder.
"""

from platepilot.cli import train_crnn

if __name__ == "__main__":
    train_crnn()
