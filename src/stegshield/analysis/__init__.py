"""stegshield.analysis."""
