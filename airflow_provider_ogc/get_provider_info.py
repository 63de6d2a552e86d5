"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider_ogc import __version__

INTEGRATION = "OGC API - Processes"


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata; ``package-name`` must equal the distribution name."""
    return {
        "package-name": "airflow-provider-ogc",
        "name": "OGC API - Processes",
        "description": "Run, monitor and consume OGC API - Processes jobs (Part 1 and Part 2) from Airflow.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://ogcapi.ogc.org/processes/",
                "tags": ["protocol"],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_ogc.operators.ogc_processes",
                    "airflow_provider_ogc.operators.application_packages",
                    "airflow_provider_ogc.operators.stac",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": INTEGRATION,
                "python-modules": ["airflow_provider_ogc.sensors.ogc_processes"],
            }
        ],
        "hooks": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_ogc.hooks.ogc_processes",
                    "airflow_provider_ogc.hooks.stac_api",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_ogc.triggers.ogc_processes",
                    "airflow_provider_ogc.triggers.stac",
                ],
            }
        ],
        "extra-links": [
            "airflow_provider_ogc.links.ogc_processes.OGCJobLink",
            "airflow_provider_ogc.links.ogc_processes.OGCJobResultsLink",
        ],
        "connection-types": [
            {
                "connection-type": "ogc_processes",
                "hook-class-name": "airflow_provider_ogc.hooks.ogc_processes.OGCProcessesHook",
                "hook-name": "OGC API - Processes",
                "conn-fields": {
                    "auth_type": {
                        "label": "Authentication",
                        "description": "none, basic (Login/Password), bearer (token in Password) "
                        "or api_key (key in Password, sent in the header named below).",
                        "schema": {
                            "type": ["string", "null"],
                            "default": "none",
                            "enum": ["none", "basic", "bearer", "api_key"],
                        },
                    },
                    "api_key_header": {
                        "label": "API key header",
                        "description": "Header that carries the API key when Authentication is api_key.",
                        "schema": {"type": ["string", "null"], "default": "X-API-Key"},
                    },
                    "extra_headers": {
                        "label": "Extra headers (JSON object)",
                        "description": 'Sent only to the API\'s own host, e.g. {"X-Tenant": "acme"}.',
                        "schema": {"type": ["string", "null"]},
                    },
                    "verify": {
                        "label": "Verify TLS certificates",
                        "schema": {"type": ["boolean", "null"], "default": True},
                    },
                    "ca_bundle": {
                        "label": "CA bundle path",
                        "description": "PEM file used to verify the server instead of the system store.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "timeout": {
                        "label": "Read timeout (seconds)",
                        "schema": {"type": ["number", "null"], "default": 30},
                    },
                    "connect_timeout": {
                        "label": "Connect timeout (seconds)",
                        "schema": {"type": ["number", "null"], "default": 10},
                    },
                    "max_retries": {
                        "label": "Retries for GET/DELETE",
                        "description": "Retries on connection errors, 5xx and 429 (honouring Retry-After).",
                        "schema": {"type": ["integer", "null"], "default": 3},
                    },
                    "max_connections": {
                        "label": "Connections per triggerer",
                        "description": "Requests in flight to this server from one triggerer process.",
                        "schema": {"type": ["integer", "null"], "default": 10},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema"],
                    "relabeling": {
                        "host": "API root URL",
                        "login": "Username",
                        "password": "Password / token / API key",
                    },
                    "placeholders": {
                        "host": "https://processing.example.org/acme/ogc-api",
                        "port": "(optional; or put it in the URL)",
                        "login": "for basic auth",
                        "password": "password, bearer token or API key",
                        "extra": '{"auth_type": "bearer", "verify": true, "timeout": 30}',
                    },
                },
            },
            {
                "connection-type": "stac_api",
                "hook-class-name": "airflow_provider_ogc.hooks.stac_api.StacApiHook",
                "hook-name": "STAC API",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema"],
                    "relabeling": {"host": "STAC API root URL", "password": "Password / token / API key"},
                    "placeholders": {
                        "host": "https://planetarycomputer.microsoft.com/api/stac/v1",
                        "extra": '{"auth_type": "none", "verify": true, "timeout": 30}',
                    },
                },
            },
        ],
    }
