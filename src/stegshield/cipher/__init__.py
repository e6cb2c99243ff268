"""stegshield.cipher."""
