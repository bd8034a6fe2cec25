"""Training the bundled plate detector (torch; never imported at run time)."""
