"""Distributor: OTLP receivers (gRPC and HTTP) and the shared push path into the ingester."""

from tempo_fast.distributor.distributor import Distributor, IngesterClient, Refused

__all__ = ["Distributor", "IngesterClient", "Refused"]
