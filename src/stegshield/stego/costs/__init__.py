"""stegshield.stego.costs."""
