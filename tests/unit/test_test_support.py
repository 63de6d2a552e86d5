"""The test support itself: the one test HTTP server and the skip-locally, fail-in-CI helper."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.support.ci import unavailable
from tests.support.replay_server import Recorded, ReplayServer, Reply, forwarding_to


@pytest.mark.parametrize("value", [None, "", "0", "false", "No", " FALSE "])
def test_unavailable_skips_outside_ci(value: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception, match="tool missing"):
        unavailable("tool missing")


@pytest.mark.parametrize("value", ["true", "1", "yes", "True"])
def test_unavailable_fails_in_ci(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="tool missing"):
        unavailable("tool missing")


def test_routes_repeat_their_last_reply_and_record_requests_with_answers() -> None:
    with ReplayServer() as server, httpx.Client(base_url=server.url) as client:
        server.route("GET", "/a", Reply(503, "busy"), Reply(200, {"self": "{base}/a"}, headers={"X-N": "1"}))
        assert client.get("/a?x=1").status_code == 503
        second, third = client.get("/a"), client.get("/a")
        assert second.json() == third.json() == {"self": f"{server.url}/a"}
        assert second.headers["x-n"] == "1" and second.headers["content-type"] == "application/json"
        assert client.post("/nowhere", content=b"hi").status_code == 404
        first = server.requests[0]
        assert (first.path, first.target, first.query, first.status) == ("/a", "/a?x=1", {"x": ["1"]}, 503)
        assert first.answer == b"busy"
        assert server.requests[-1].body == b"hi" and server.requests[-1].status == 404
        assert len(server.hits("GET", "/a")) == 3
        assert server.count("GET", "/a", status=200) == 2 and server.count(path="/a", answer="{base}") == 0
        assert server.count(path=r"/(a|nowhere)") == 4


def test_a_handler_answers_first_and_none_falls_back_to_the_routes() -> None:
    def handler(request: Recorded) -> Reply | None:
        if request.method == "PUT":
            return Reply(202, request.body, content_type="", headers=[("Link", "<a>"), ("Link", "<b>")])
        return None

    with ReplayServer(handler) as server, httpx.Client(base_url=server.url) as client:
        server.route("GET", "/r", Reply(200, "routed"))
        put = client.put("/anything", content=b"echo")
        assert put.status_code == 202 and put.content == b"echo"
        assert "content-type" not in put.headers and put.headers.get_list("link") == ["<a>", "<b>"]
        assert client.get("/r").text == "routed"


def test_a_reset_is_recorded_without_an_answer_and_wait_for_is_bounded() -> None:
    with ReplayServer() as server, httpx.Client(base_url=server.url) as client:
        server.route("GET", "/drop", Reply(reset=True))
        with pytest.raises(httpx.TransportError):
            client.get("/drop")
        assert len(server.hits("GET", "/drop")) == 1 and server.count("GET", "/drop") == 0
        with pytest.raises(AssertionError, match=r"no GET /drop answered None within 0\.1 s"):
            server.wait_for("GET", "/drop", timeout=0.1)
        server.route("GET", "/late", Reply(200, "ok", delay=0.2))
        thread = threading.Thread(target=client.get, args=("/late",))
        thread.start()
        server.wait_for("GET", "/late", 200, timeout=30)
        thread.join()


def test_forwarding_passes_answers_through_unchanged_and_counts_them() -> None:
    with ReplayServer() as upstream, ReplayServer(forwarding_to(upstream.url)) as proxy:
        upstream.route(
            "POST",
            "/p",
            Reply(
                201,
                b"<html>made</html>",
                content_type="text/html",
                reason="Made",
                headers={"Location": "/p/1"},
            ),
        )
        with httpx.Client(base_url=proxy.url) as client:
            reply = client.post("/p?q=1", content=b'{"a": 1}', headers={"Authorization": "Bearer t"})
        assert (reply.status_code, reply.reason_phrase, reply.text) == (201, "Made", "<html>made</html>")
        assert reply.headers["content-type"] == "text/html" and reply.headers["location"] == "/p/1"
        sent = upstream.requests[0]
        assert (sent.target, sent.body, sent.headers["Authorization"]) == ("/p?q=1", b'{"a": 1}', "Bearer t")
        assert proxy.count("POST", "/p", status=201, answer="made") == 1
