"""Apache Airflow provider for the ZenDRIVE S3 Access usage-statistics API."""

from __future__ import annotations

__version__ = "0.2.0"

__all__ = ["__version__"]
