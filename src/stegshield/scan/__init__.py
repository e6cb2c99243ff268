"""stegshield.scan."""
