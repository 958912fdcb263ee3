"""The jitflow version string (a leaf module: the runtime keys its caches with it)."""
__version__ = "0.1.0"
