"""Live-class booking for Django learning platforms."""

__version__ = "0.1.0.dev0"
