"""The broker's HTTP service (FastAPI)."""

from trust_broker.service.app import create_app
from trust_broker.service.context import BrokerContext, BrokerSettings

__all__ = ["BrokerContext", "BrokerSettings", "create_app"]
