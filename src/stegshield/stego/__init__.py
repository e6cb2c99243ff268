"""stegshield.stego."""
