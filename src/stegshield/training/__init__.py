"""stegshield.training."""
