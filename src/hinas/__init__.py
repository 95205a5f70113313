"""hinas: memory-efficient hierarchical neural architecture search for image restoration."""

__version__ = "0.1.0"

__all__ = ["__version__", "load_model"]


def __getattr__(name: str):
    """Lazy top-level API (`hinas.load_model`), so that `import hinas` stays light."""
    if name == "load_model":
        from hinas.models import load_model

        return load_model
    raise AttributeError(f"module 'hinas' has no attribute {name!r}")
