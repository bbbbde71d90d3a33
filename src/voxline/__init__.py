"""voxline: a self-hostable voice-agent server."""

__version__ = "0.1.0"
