"""Local, citation-verified Q&A over one policy text. Importing this package loads no models."""

__version__ = "0.1.0"
