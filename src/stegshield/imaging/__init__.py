"""stegshield.imaging."""
