"""GENRE-CMR: generalizable deep-unrolled reconstruction of accelerated multi-coil cardiac MRI."""

__version__ = "0.1.0"
