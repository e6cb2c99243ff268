"""stegshield.datasets.

- :mod:`stegshield.datasets.covers`: build a corpus of cover tiles from real photographs
  (:func:`~stegshield.datasets.covers.build_covers`; see ``docs/CORPUS.md``).
- :mod:`stegshield.datasets.debian`: fetch the allowed Debian packages / PyPI wheels that
  hold photographs, with versions and licences (reserved evaluation packages refused).
"""
