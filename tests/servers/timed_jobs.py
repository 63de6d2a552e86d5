"""A cheap OGC API - Processes server whose ``sleep`` jobs take wall-clock time (stdlib only).

For the production-shaped tests, which run hundreds of jobs at once: pygeoapi runs each job in a
process of its own, this server only remembers when each job ends. One process, ``sleep``, with
inputs ``seconds`` (number) and ``tag`` (any JSON, echoed back); a job is ``running`` until
``seconds`` after its submission, then ``successful`` with the results ``{"slept": seconds, "tag":
tag}``. ``DELETE /jobs/{id}`` dismisses a job (it stays listed, status ``dismissed``).

``GET /stats`` counts what the tests assert on::

    {"submissions": 3, "dismissals": ["<job id>", ...], "status_requests": 120, "jobs": {...}}

where ``jobs`` maps each job id to ``{"tag", "seconds", "created", "ended", "dismissed"}``
(epoch seconds). Run it as ``python -m tests.servers.timed_jobs --port 0``; it prints
``READY <port>`` once it listens, and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DESCRIPTION = {
    "id": "sleep",
    "title": "Sleep",
    "version": "1.0.0",
    "jobControlOptions": ["async-execute"],
    "inputs": {
        "seconds": {"schema": {"type": "number", "minimum": 0}, "minOccurs": 1, "maxOccurs": 1},
        "tag": {"schema": {}, "minOccurs": 0, "maxOccurs": 1},
    },
    "outputs": {"slept": {"schema": {"type": "number"}}, "tag": {"schema": {}}},
}


class Jobs:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.submissions = 0
        self.dismissals: list[str] = []
        self.status_requests = 0

    def status(self, job_id: str, base: str) -> dict[str, Any] | None:
        job = self.jobs.get(job_id)
        if job is None:
            return None
        now = time.time()
        if job["dismissed"]:
            status, progress = "dismissed", None
        elif now >= job["created"] + job["seconds"]:
            status, progress = "successful", 100
            job["ended"] = job["ended"] or now
        else:
            status = "running"
            progress = int(100 * (now - job["created"]) / max(job["seconds"], 1e-6))
        info: dict[str, Any] = {
            "type": "process",
            "processID": "sleep",
            "jobID": job_id,
            "status": status,
            "message": f"sleep {job['seconds']} s",
            "created": _iso(job["created"]),
            "updated": _iso(now),
            "links": [{"href": f"{base}/jobs/{job_id}", "rel": "self", "type": "application/json"}],
        }
        if progress is not None:
            info["progress"] = progress
        return info


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


JOBS = Jobs()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the triggerers keep pooled connections

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def _send(self, code: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        raw = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def _not_found(self) -> None:
        self._send(
            404,
            {
                "type": "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-job",
                "title": "Not found",
            },
        )

    def _path(self) -> list[str]:
        return [p for p in self.path.split("?", 1)[0].split("/") if p]

    def do_GET(self) -> None:
        parts = self._path()
        with JOBS.lock:
            if parts == []:
                self._send(200, {"title": "timed jobs", "links": []})
            elif parts == ["conformance"]:
                self._send(
                    200,
                    {
                        "conformsTo": [
                            "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core",
                            "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/json",
                            "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/job-list",
                            "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/dismiss",
                        ]
                    },
                )
            elif parts == ["processes"]:
                self._send(200, {"processes": [DESCRIPTION], "links": []})
            elif parts == ["processes", "sleep"]:
                self._send(200, DESCRIPTION)
            elif parts == ["jobs"]:
                jobs = [JOBS.status(j, self.base) for j in JOBS.jobs]
                self._send(200, {"jobs": jobs, "links": []})
            elif len(parts) == 2 and parts[0] == "jobs":
                JOBS.status_requests += 1
                info = JOBS.status(parts[1], self.base)
                if info is None:
                    self._not_found()
                else:
                    self._send(200, info)
            elif len(parts) == 3 and parts[0] == "jobs" and parts[2] == "results":
                info = JOBS.status(parts[1], self.base)
                if info is None:
                    self._not_found()
                elif info["status"] != "successful":
                    self._send(404, {"type": "result-not-ready", "title": f"job is {info['status']}"})
                else:
                    job = JOBS.jobs[parts[1]]
                    self._send(200, {"slept": job["seconds"], "tag": job["tag"]})
            elif parts == ["stats"]:
                self._send(
                    200,
                    {
                        "submissions": JOBS.submissions,
                        "dismissals": list(JOBS.dismissals),
                        "status_requests": JOBS.status_requests,
                        "jobs": JOBS.jobs,
                    },
                )
            else:
                self._not_found()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self._path() != ["processes", "sleep", "execution"]:
            self._not_found()
            return
        inputs = body.get("inputs") or {}
        seconds = inputs.get("seconds")
        if not isinstance(seconds, (int, float)) or seconds < 0:
            self._send(400, {"type": "invalid-parameter-value", "title": "seconds must be a number >= 0"})
            return
        job_id = str(uuid.uuid4())
        with JOBS.lock:
            JOBS.submissions += 1
            JOBS.jobs[job_id] = {
                "tag": inputs.get("tag"),
                "seconds": seconds,
                "created": time.time(),
                "ended": None,
                "dismissed": None,
            }
            info = JOBS.status(job_id, self.base)
        self._send(201, info, {"Location": f"{self.base}/jobs/{job_id}"})

    def do_DELETE(self) -> None:
        parts = self._path()
        with JOBS.lock:
            job = JOBS.jobs.get(parts[1]) if len(parts) == 2 and parts[0] == "jobs" else None
            if job is None:
                self._not_found()
                return
            if not job["dismissed"]:
                job["dismissed"] = time.time()
                JOBS.dismissals.append(parts[1])
            self._send(200, JOBS.status(parts[1], self.base))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.servers.timed_jobs")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
