"""stegshield.datasets."""
