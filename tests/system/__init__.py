"""System tests: real Airflow 3 components (api-server, scheduler, dag-processor, triggerer)."""
