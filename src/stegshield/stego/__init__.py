"""Steganography: cost maps (``costs``), coders (``stc``), positions, and hide/reveal."""
