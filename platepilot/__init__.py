"""platepilot: edge licence plate recognition for Florida roads, with its reader's whole life cycle."""

__version__ = "0.1.0"
