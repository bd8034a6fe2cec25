"""Watchlists (exact, fold-aware, edit-distance, per camera and hours) and the alerts they raise."""
