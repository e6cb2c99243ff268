"""stegshield.analysis.structural."""
