"""stegshield: hide sealed data in images, detect hidden data, encrypt images."""

__version__ = "0.1.0"

__all__ = ["__version__"]
