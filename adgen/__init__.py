"""adgen: a self-hosted, feedback-driven optimizer for advertising copy."""

__version__ = "0.1.0"
