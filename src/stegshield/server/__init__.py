"""stegshield.server."""
