"""Delivery: the worker that claims, renders, signs and sends deliveries, the HTTP sender (the
only HTTP client of tidings), meta events, retention and metrics."""

from tidings.delivery.sender import HttpSender, Sender, SendResult
from tidings.delivery.settings import WorkerSettings
from tidings.delivery.worker import Worker

__all__ = ["HttpSender", "SendResult", "Sender", "Worker", "WorkerSettings"]
