"""hinas: memory-efficient hierarchical neural architecture search for image restoration."""

__version__ = "0.1.0"
