"""The ``ogc_processes`` connection: URL forms, auth types, extras, and errors that name the field."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from airflow.sdk import Connection

from airflow_provider_ogc.exceptions import OGCConnectionConfigError
from airflow_provider_ogc.hooks import OGCProcessesHook
from airflow_provider_ogc.hooks._http import ConnectionSettings


def settings(**fields: Any) -> ConnectionSettings:
    extra = fields.pop("extra", None)
    conn = Connection(
        conn_id="c", conn_type="ogc_processes", extra=json.dumps(extra) if extra else None, **fields
    )
    return ConnectionSettings.from_connection(conn)


def test_host_keeps_the_api_root_path() -> None:
    s = settings(host="http://zoo-project-dru-service/acme/ogc-api/")
    assert s.base_url == "http://zoo-project-dru-service/acme/ogc-api"
    assert s.url("jobs/1") == "http://zoo-project-dru-service/acme/ogc-api/jobs/1"
    assert s.url("") == "http://zoo-project-dru-service/acme/ogc-api/"


def test_bare_host_with_port_and_schema_path_defaults_to_https() -> None:
    s = settings(host="processing.example.org", port=8443, schema="acme/ogc-api")
    assert s.base_url == "https://processing.example.org:8443/acme/ogc-api"


def test_port_field_is_added_to_a_url_without_port() -> None:
    assert settings(host="http://127.0.0.1/ogc", port=5000).base_url == "http://127.0.0.1:5000/ogc"


def test_defaults_are_safe() -> None:
    s = settings(host="https://h")
    assert s.verify is True and s.auth_type == "none" and s.max_retries == 3
    assert s.timeout == 30.0 and s.connect_timeout == 10.0 and s.max_connections == 10


@pytest.mark.parametrize(
    ("fields", "header", "value"),
    [
        ({"login": "u", "password": "p"}, "Authorization", "Basic " + base64.b64encode(b"u:p").decode()),
        ({"password": "tok"}, "Authorization", "Bearer tok"),
        ({"password": "k", "extra": {"auth_type": "api_key"}}, "X-API-Key", "k"),
        ({"password": "k", "extra": {"auth_type": "api_key", "api_key_header": "X-Key"}}, "X-Key", "k"),
        ({"login": "u", "password": "tok", "extra": {"auth_type": "bearer"}}, "Authorization", "Bearer tok"),
    ],
)
def test_auth_types(fields: dict[str, Any], header: str, value: str) -> None:
    import httpx

    auth = settings(host="https://h/ogc", **fields).auth()
    request = httpx.Request("GET", "https://h/ogc/jobs")
    next(auth.auth_flow(request))
    assert request.headers[header] == value


def test_credentials_are_not_added_for_another_origin() -> None:
    import httpx

    auth = settings(
        host="https://h/ogc", password="tok", extra={"extra_headers": {"X-Tenant": "acme"}}
    ).auth()
    for other in ("https://evil.example/ogc/jobs", "http://h/ogc/jobs", "https://h:8443/ogc/jobs"):
        request = httpx.Request("GET", other)
        next(auth.auth_flow(request))
        assert "Authorization" not in request.headers and "X-Tenant" not in request.headers, other
    same = httpx.Request("GET", "https://H:443/ogc/jobs")
    next(auth.auth_flow(same))
    assert same.headers["Authorization"] == "Bearer tok" and same.headers["X-Tenant"] == "acme"


def test_extra_headers_accept_a_json_string_from_the_ui_form() -> None:
    s = settings(host="https://h", extra={"extra_headers": '{"X-Tenant": "acme"}'})
    assert dict(s.headers) == {"X-Tenant": "acme"}


@pytest.mark.parametrize(("value", "expected"), [(False, False), ("false", False), ("true", True)])
def test_verify_flag(value: object, expected: bool) -> None:
    assert settings(host="https://h", extra={"verify": value}).verify is expected


def test_ca_bundle_path_is_used_for_verification() -> None:
    assert settings(host="https://h", extra={"ca_bundle": "/etc/ca.pem"}).verify == "/etc/ca.pem"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"host": ""}, "has no host"),
        ({"host": "ftp://h/x"}, "not an http"),
        ({"host": "https://h", "extra": {"auth_type": "oauth"}}, "auth_type 'oauth' is not one of"),
        ({"host": "https://h", "extra": {"auth_type": "bearer"}}, "needs the Password field"),
        ({"host": "https://h", "password": "p", "extra": {"auth_type": "basic"}}, "basic auth needs a Login"),
        (
            {"host": "https://h", "extra": {"extra_headers": "{not json"}},
            "extra_headers is not a JSON object",
        ),
        ({"host": "https://h", "extra": {"timeout": "soon"}}, "timeout must be a number"),
        ({"host": "https://h", "extra": {"timeout": -1}}, "timeout must be positive"),
        ({"host": "https://h", "extra": {"max_connections": 0}}, "max_connections must be positive"),
    ],
)
def test_bad_connections_name_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(OGCConnectionConfigError, match=message):
        settings(**fields)


def test_secret_is_not_in_the_settings_repr() -> None:
    s = settings(host="https://h", password="very-secret-token", extra={"extra_headers": {"X-Key": "abc"}})
    assert "very-secret-token" not in repr(s) and "abc" not in repr(s)


def test_hook_reads_the_connection_from_an_env_var(make_conn: Any) -> None:
    conn_id = make_conn("http://127.0.0.1:1/acme/ogc-api", password="t0ken", extra={"auth_type": "bearer"})
    hook = OGCProcessesHook(ogc_conn_id=conn_id)
    assert hook.base_url == "http://127.0.0.1:1/acme/ogc-api"
    assert hook.settings.auth_type == "bearer" and hook.settings.secret == "t0ken"


def test_default_connection_id() -> None:
    assert OGCProcessesHook().ogc_conn_id == "ogc_processes_default"
    assert OGCProcessesHook.conn_type == "ogc_processes"
