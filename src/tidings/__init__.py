"""tidings: a self-hosted webhook and event-notification service."""

__version__ = "0.1.0"
