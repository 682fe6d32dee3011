"""Kafka API keys: `ApiKey.PRODUCE == 0`, ... one member per API a broker listener serves.

Generated with the schemas (wire/messages.py) from the same definitions, re-exported here."""
from wire.messages import API_VERSIONS, FLEXIBLE_FROM, ApiKey

__all__ = ["ApiKey", "API_VERSIONS", "FLEXIBLE_FROM"]
