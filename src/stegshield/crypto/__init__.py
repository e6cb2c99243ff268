"""stegshield.crypto."""
