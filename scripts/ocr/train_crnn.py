#!/usr/bin/env python3
"""The guide's training command: `python3 scripts/ocr/train_crnn.py --labels ... --output-dir ...`.

A thin entry point over `platepilot train`; run it inside the project's venv (`source .venv/bin/activate`).
"""

import sys

from platepilot.cli import main

if __name__ == "__main__":
    sys.argv = ["platepilot", "train", *sys.argv[1:]]
    main()
