"""tinyalex: AlexNet from scratch in NumPy and CuPy."""
__version__ = "0.1.0"
