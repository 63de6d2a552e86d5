"""Benchmarks of airflow-provider-ogc: ``python -m benchmarks`` (see README.md beside this file)."""
