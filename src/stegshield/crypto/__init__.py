"""Cryptographic recipes: Argon2id key derivation, AEAD sealing, container format."""
