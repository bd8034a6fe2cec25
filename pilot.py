#!/usr/bin/env python3
"""The guide's edge runtime entry point: `python3 pilot.py [--source ...] [--duration S] [--stats]`.

A thin wrapper over `platepilot run`; all logic lives in `platepilot.pipeline`.
"""

import sys

from platepilot.cli import main

if __name__ == "__main__":
    main(sys.argv[1:], prog_name="pilot.py", command="run")
