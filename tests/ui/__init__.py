"""UI tests: the Airflow UI in a real browser (Chromium driven by selenium) against `airflow standalone`."""
