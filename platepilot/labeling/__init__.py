"""Labeling: the web labeling tool (hotkeys, review mode), pre-labels, label checks, YOLO crop extraction.

The web app needs the `web` extra (fastapi, uvicorn); the rest needs only the base install.
"""
