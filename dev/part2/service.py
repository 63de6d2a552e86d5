"""wraptile 0.3 service with OGC API - Processes Part 2 (Deploy, Replace, Undeploy) for CWL packages.

Loaded by wraptile as ``dev.part2.service:service`` (see :mod:`dev.part2.server`). Because the
service is a gavicore ``DruService``, wraptile mounts its Part 2 routes (``POST /processes``,
``PUT``/``DELETE /processes/{id}``, ``GET /processes/{id}/package``) next to the Part 1 routes.

* A deployed CWL application package becomes a process whose jobs run
  ``cwltool --no-container`` in a subprocess (one per job, in ``WORKDIR/jobs/{job id}/``).
* Packages are validated with cwltool (in-process, on one worker thread) before they are deployed.
* The packages in ``packages/builtin/`` are built-in processes: immutable (403 on replace/undeploy).
* ``File`` results that hold STAC JSON are returned as their parsed content; other files as links
  to ``GET /jobs/{id}/outputs/{path}`` (a route this service adds).

Configuration: environment ``OGC_PART2_WORKDIR`` (default ``./part2-work``), ``OGC_PART2_NONCE``
(shown on the landing page), and the service options ``--max-jobs=N`` (cwltool runs at once,
default 4) and ``--parallel`` / ``--no-parallel`` (cwltool ``--parallel``, default on).
Everything in ``WORKDIR/processes`` and ``WORKDIR/jobs`` is removed at start: like wraptile's
``LocalService``, the server keeps its processes and jobs in memory only.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import json
import logging
import mimetypes
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from fastapi.responses import FileResponse, JSONResponse, Response
from gavicore.dru_service import DruService
from gavicore.models import (
    ConformanceDeclaration,
    JobInfo,
    JobList,
    JobResults,
    JobStatus,
    Link,
    ProcessDescription,
    ProcessList,
    ProcessRequest,
    ProcessSummary,
)
from wraptile.exceptions import ServiceException
from wraptile.services.base import ServiceBase
from wraptile.services.base.service_base import DEFAULT_CONFORMS_TO

from dev.part2 import cwl

if TYPE_CHECKING:
    import fastapi

LOG = logging.getLogger("uvicorn")
HERE = Path(__file__).resolve().parent
BUILTIN_DIR = HERE / "packages" / "builtin"

CWL_YAML = "application/cwl+yaml"
CWL_JSON = "application/cwl+json"
CWL_ANY = "application/cwl"  # the spec's generic CWL type; parsed as YAML (which includes JSON)
OGCAPPPKG = "application/ogcapppkg+json"
SUPPORTED = (CWL_YAML, CWL_JSON, CWL_ANY, OGCAPPPKG)

PART1_EXC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
PART2_EXC = "http://www.opengis.net/def/exceptions/ogcapi-processes-2/1.0/"
CONFORMS_TO = [
    *DEFAULT_CONFORMS_TO,
    "http://www.opengis.net/spec/ogcapi-processes-2/1.0/conf/deploy-replace-undeploy",
    "http://www.opengis.net/spec/ogcapi-processes-2/1.0/conf/ogcapppkg",
    "http://www.opengis.net/spec/ogcapi-processes-2/1.0/conf/cwl",
]
JOB_CONTROL = ["async-execute", "dismiss"]
OUTPUT_TRANSMISSION = ["value", "reference"]
REL_EXECUTE = "http://www.opengis.net/def/rel/ogc/1.0/execute"
REL_RESULTS = "http://www.opengis.net/def/rel/ogc/1.0/results"
REL_PACKAGE = "http://www.opengis.net/def/rel/ogc/1.0/application-package"

FETCH_TIMEOUT = 30.0  # seconds, for executionUnit hrefs
MAX_PACKAGE_BYTES = 10 * 1024 * 1024
MAX_STAC_BYTES = 64 * 1024 * 1024  # File outputs up to this size are checked for STAC JSON
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL of the tools of a dismissed job
MESSAGE_LINES = 8  # stderr lines in a failed job's message

# Runs cwltool and exits with its status (`python -m cwltool` always exits 0).
CWLTOOL = "import sys; from cwltool.main import run; sys.exit(run(sys.argv[1:]))"
# Environment variables handed through to the tools (cwltool gives them only HOME, TMPDIR, PATH).
PRESERVE_PREFIXES = ("AWS_", "OGC_", "GDAL_", "CPL_", "PROJ_")
PRESERVE_NAMES = {
    "PYTHONPATH",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "NO_PROXY",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "LANG",
    "LC_ALL",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
}
LOOPBACK = "127.0.0.1,localhost"
_LINE = re.compile(r"^(?:INFO|WARNING|ERROR|DEBUG)?\s*\[(job|step|workflow) ?([^\]]*)\] (.*)$")
_FINAL = re.compile(r"Final process status is (\w+)")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _error(status: int, detail: str, type_uri: str | None = None) -> ServiceException:
    """An RFC 7807 error as wraptile sends it; ``type_uri`` overrides wraptile's type for the status."""
    exc = ServiceException(status, detail=detail)
    if type_uri:
        exc.content.type = type_uri
    return exc


def _no_such_process(process_id: str) -> ServiceException:
    return _error(404, f"Process {process_id!r} does not exist", PART1_EXC + "no-such-process")


def _no_such_job(job_id: str) -> ServiceException:
    return _error(404, f"Job {job_id!r} does not exist", PART1_EXC + "no-such-job")


# --- deployed processes -----------------------------------------------------------------------


@dataclass
class Package:
    process_id: str
    description: dict[str, Any]  # OGC description without links/mutable/jobControlOptions
    doc: dict[str, Any]  # the parsed CWL document
    selection: cwl.Selection
    cwl_path: Path  # what cwltool runs
    body: bytes  # the request body as deployed
    media_type: str  # ... and its media type
    cwl_media_type: str  # CWL_YAML or CWL_JSON: how the CWL itself was written
    cwl_text: str  # the CWL document's text as deployed (YAML text or JSON)
    mutable: bool = True

    @property
    def cwl_target(self) -> str:
        return f"{self.cwl_path}#{self.selection.fragment}" if self.selection.fragment else str(self.cwl_path)

    @property
    def version(self) -> str:
        return str(self.description.get("version", cwl.DEFAULT_VERSION))


# --- jobs -------------------------------------------------------------------------------------


@dataclass
class Job:
    job_id: str
    package: Package
    order: dict[str, Any]
    dir: Path
    expected: int
    status: JobStatus = JobStatus.accepted
    message: str | None = None
    progress: int | None = None
    created: datetime = field(default_factory=_now)
    started: datetime | None = None
    finished: datetime | None = None
    updated: datetime | None = None
    dismissed: bool = False
    proc: subprocess.Popen[bytes] | None = None
    done: int = 0
    outputs: dict[str, Any] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def process_id(self) -> str:
        return self.package.process_id

    @property
    def out_dir(self) -> Path:
        return self.dir / "out"

    def info(self, request: fastapi.Request | None = None, status: JobStatus | None = None) -> JobInfo:
        fields: dict[str, Any] = {
            "jobID": self.job_id,
            "processID": self.process_id,
            "type": "process",
            "status": status or self.status,
            "created": self.created,
        }
        for key in ("message", "progress", "started", "finished", "updated"):
            value = getattr(self, key)
            if value is not None:
                fields[key] = value
        proc = self.proc
        if proc is not None and proc.poll() is None:
            fields["x-cwltool-pid"] = proc.pid
        if request is not None:
            links = [
                Link(
                    href=str(request.url_for("get_job", jobId=self.job_id)),
                    rel="self",
                    type="application/json",
                )
            ]
            if (status or self.status) == JobStatus.successful:
                href = str(request.url_for("get_job_results", jobId=self.job_id))
                links.append(Link(href=href, rel=REL_RESULTS, type="application/json"))
            fields["links"] = links
        return JobInfo(**fields)


class CwlDruService(ServiceBase, DruService):
    """OGC API - Processes Part 1 + Part 2 over CWL packages run by cwltool (no containers)."""

    def __init__(self, title: str, description: str | None = None) -> None:
        super().__init__(title=title, description=description, conforms_to=CONFORMS_TO)
        self.workdir = Path(os.environ.get("OGC_PART2_WORKDIR") or "part2-work").absolute()
        self.max_jobs = 4
        self.parallel = True
        self._processes: dict[str, Package] = {}
        self._jobs: dict[str, Job] = {}
        self._lock = threading.RLock()
        self._slots = threading.BoundedSemaphore(self.max_jobs)
        # cwltool validation is not thread-safe enough to run concurrently: one worker.
        self._validator = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cwl-validate")
        self._configured = False

    # --- set-up ---

    def configure(self, max_jobs: int | None = None, parallel: bool | None = None, **_: Any) -> None:
        if max_jobs:
            self.max_jobs = int(max_jobs)
            self._slots = threading.BoundedSemaphore(self.max_jobs)
        if parallel is not None:
            self.parallel = bool(parallel)
        if self._configured:
            return
        self._configured = True
        for sub in ("processes", "jobs"):
            shutil.rmtree(self.workdir / sub, ignore_errors=True)
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        for path in sorted(BUILTIN_DIR.glob("*.cwl")):
            package = self._builtin(path)
            self._processes[package.process_id] = package
        self._add_routes()
        # Import cwltool and load its schemas now, in the background: the first deploy is then fast.
        self._validator.submit(self._warm_up)
        atexit.register(self._shutdown)
        self._chain_signal_handlers()
        LOG.info(
            "Part 2 CWL service: workdir %s, built-in %s, max %d jobs, cwltool --parallel %s",
            self.workdir,
            sorted(self._processes),
            self.max_jobs,
            self.parallel,
        )

    def _builtin(self, path: Path) -> Package:
        text = path.read_text(encoding="utf-8")
        doc = cwl.parse(text, CWL_YAML)
        selection = cwl.select(doc)
        return Package(
            process_id=selection.process_id,
            description=cwl.describe(doc, selection),
            doc=doc,
            selection=selection,
            cwl_path=path,
            body=text.encode("utf-8"),
            media_type=CWL_YAML,
            cwl_media_type=CWL_YAML,
            cwl_text=text,
            mutable=False,
        )

    def _warm_up(self) -> None:
        for package in list(self._processes.values()):
            try:
                _validate_with_cwltool(package.cwl_target)
            except Exception as err:  # a broken built-in is logged, not fatal
                LOG.warning("built-in package %s does not validate: %s", package.cwl_path, err)

    def _add_routes(self) -> None:
        from wraptile.app import app

        service = self

        async def get_job_output(jobId: str, path: str) -> Response:
            return service.job_output(jobId, path)

        app.add_api_route(
            "/jobs/{jobId}/outputs/{path:path}",
            get_job_output,
            methods=["GET"],
            name="get_job_output",
            response_class=Response,
        )

    def _chain_signal_handlers(self) -> None:
        """Stop the running cwltool processes on SIGTERM/SIGINT, then let uvicorn handle the signal.

        uvicorn (0.29+) ends its process by re-raising the signal after its shutdown, so ``atexit``
        handlers never run on ``kill``; the jobs' cwltool processes and tools would outlive the
        server. configure() runs in uvicorn's lifespan startup, in the main thread, after uvicorn
        installed its own handlers: ours run first and call them.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)

            def handler(signum: int, frame: Any, previous: Any = previous) -> None:
                self._shutdown()
                if callable(previous):
                    previous(signum, frame)
                elif previous != signal.SIG_IGN:
                    signal.signal(signum, signal.SIG_DFL)
                    signal.raise_signal(signum)

            signal.signal(sig, handler)

    def _shutdown(self) -> None:
        """On SIGTERM/SIGINT or at interpreter exit: stop the cwltool processes we started."""
        procs = [job.proc for job in list(self._jobs.values()) if job.proc is not None]
        for proc in procs:
            if proc.poll() is None:
                _terminate(proc)

    # --- helpers ---

    def _get_package(self, process_id: str) -> Package:
        package = self._processes.get(process_id)
        if package is None:
            raise _no_such_process(process_id)
        return package

    def _get_job(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise _no_such_job(job_id)
        return job

    @staticmethod
    def _process_links(request: fastapi.Request, process_id: str) -> list[Link]:
        def url(name: str, **params: str) -> str:
            return str(request.url_for(name, **params))

        links = [
            Link(href=url("get_process", processID=process_id), rel="self", type="application/json"),
            Link(href=url("execute_process", processID=process_id), rel=REL_EXECUTE, type="application/json"),
        ]
        try:
            href = url("get_formal_description", processId=process_id)
            links.append(Link(href=href, rel=REL_PACKAGE, type=CWL_YAML, title="CWL application package"))
        except Exception:  # Part 2 routes not mounted (not loaded by wraptile)
            pass
        return links

    def _summary_fields(self, package: Package, request: fastapi.Request) -> dict[str, Any]:
        fields = {k: v for k, v in package.description.items() if k not in ("inputs", "outputs")}
        fields.update(
            mutable=package.mutable,
            jobControlOptions=JOB_CONTROL,
            outputTransmission=OUTPUT_TRANSMISSION,
            links=self._process_links(request, package.process_id),
        )
        return fields

    def _summary(self, package: Package, request: fastapi.Request) -> ProcessSummary:
        return ProcessSummary(**self._summary_fields(package, request))

    # --- Part 1 ---

    async def get_conformance(self, **_kwargs: Any) -> ConformanceDeclaration:
        return ConformanceDeclaration(conformsTo=self.conforms_to)

    async def get_processes(self, request: fastapi.Request, **_kwargs: Any) -> ProcessList:
        with self._lock:
            packages = list(self._processes.values())
        return ProcessList(
            processes=[self._summary(p, request) for p in packages],
            links=[self.get_self_link(request, "get_processes")],
        )

    async def get_process(
        self, process_id: str, request: fastapi.Request, **_kwargs: Any
    ) -> ProcessDescription:
        package = self._get_package(process_id)
        return ProcessDescription(
            **self._summary_fields(package, request),
            inputs=package.description.get("inputs") or {},
            outputs=package.description.get("outputs") or {},
        )

    async def execute_process(
        self,
        process_id: str,
        process_request: ProcessRequest,
        request: fastapi.Request,
        response: fastapi.Response,
        **_kwargs: Any,
    ) -> JobInfo:
        package = self._get_package(process_id)
        try:
            order = cwl.job_order(package.selection, process_request.inputs)
        except cwl.InputError as err:
            raise _error(400, f"Invalid inputs for process {process_id!r}: {err}") from err
        job_id = str(uuid.uuid4())
        job_dir = self.workdir / "jobs" / job_id
        (job_dir / "tmp").mkdir(parents=True)
        (job_dir / "job.json").write_text(json.dumps(order, indent=2))
        job = Job(
            job_id=job_id,
            package=package,
            order=order,
            dir=job_dir,
            expected=cwl.expected_jobs(package.doc, package.selection, order),
        )
        with self._lock:
            self._jobs[job_id] = job
        threading.Thread(target=self._run, args=(job,), name=f"job-{job_id[:8]}", daemon=True).start()
        response.headers["Location"] = str(request.url_for("get_job", jobId=job_id))
        return job.info(request)

    async def get_jobs(self, request: fastapi.Request, **_kwargs: Any) -> JobList:
        with self._lock:
            jobs = list(self._jobs.values())
        return JobList(jobs=[j.info(request) for j in jobs], links=[self.get_self_link(request, "get_jobs")])

    async def get_job(self, job_id: str, request: fastapi.Request, **_kwargs: Any) -> JobInfo:
        return self._get_job(job_id).info(request)

    async def dismiss_job(self, job_id: str, request: fastapi.Request, **_kwargs: Any) -> JobInfo:
        """As wraptile: a queued or running job becomes ``dismissed`` (its cwltool is terminated);
        a finished one is removed (a later GET/DELETE answers 404)."""
        job = self._get_job(job_id)
        with job.lock:
            if job.status in (JobStatus.accepted, JobStatus.running):
                job.dismissed = True
                job.status = JobStatus.dismissed
                job.message = "dismissed"
                job.updated = _now()
                proc = job.proc
                if proc is not None and proc.poll() is None:
                    _terminate(proc)
                return job.info(request)
        with self._lock:
            self._jobs.pop(job_id, None)
        return job.info(request, status=JobStatus.dismissed)

    async def get_job_results(self, job_id: str, request: fastapi.Request, **_kwargs: Any) -> JobResults:
        job = self._get_job(job_id)
        if job.status != JobStatus.successful or job.outputs is None:
            reasons = {
                JobStatus.accepted: ("has not started yet", PART1_EXC + "result-not-ready"),
                JobStatus.running: ("is still running", PART1_EXC + "result-not-ready"),
                JobStatus.dismissed: ("has been cancelled", None),
                JobStatus.failed: (f"has failed: {job.message}", None),
            }
            reason, type_uri = reasons.get(job.status, ("has no results", None))
            raise _error(403, f"Job {job_id!r} {reason}", type_uri)
        base = str(request.base_url).rstrip("/")
        return JobResults({name: self._result(value, job, base) for name, value in job.outputs.items()})

    def _result(self, value: Any, job: Job, base: str) -> Any:
        if isinstance(value, list):
            return [self._result(v, job, base) for v in value]
        if not isinstance(value, dict):
            return value
        kind = value.get("class")
        if kind not in ("File", "Directory"):
            return {k: self._result(v, job, base) for k, v in value.items()}
        path = Path(value.get("path") or _uri_path(value.get("location", "")))
        if kind == "File":
            stac = _read_stac(path)
            if stac is not None:
                return stac
            media = cwl.media_type_of(value.get("format")) or _guess_type(path)
            return {"href": self._output_url(path, job, base), "type": media, "title": path.name}
        catalog = path / "catalog.json"
        if catalog.is_file():
            return {
                "href": self._output_url(catalog, job, base),
                "type": "application/json",
                "title": "catalog.json",
            }
        return {
            "href": self._output_url(path, job, base) + "/",
            "type": "application/json",
            "title": path.name,
        }

    @staticmethod
    def _output_url(path: Path, job: Job, base: str) -> str:
        try:
            rel = path.resolve().relative_to(job.out_dir.resolve())
        except ValueError:
            return path.as_uri()
        return f"{base}/jobs/{job.job_id}/outputs/{rel.as_posix()}"

    def job_output(self, job_id: str, path: str) -> Response:
        """``GET /jobs/{id}/outputs/{path}``: a file of a job's outputs (a directory: a JSON listing)."""
        job = self._get_job(job_id)
        root = job.out_dir.resolve()
        target = (root / path).resolve()
        if not target.is_relative_to(root) or not target.exists():
            raise _error(404, f"Job {job_id!r} has no output file {path!r}", PART1_EXC + "no-such-job")
        if target.is_dir():
            entries = [
                {
                    "name": p.name + ("/" if p.is_dir() else ""),
                    "type": "directory" if p.is_dir() else _guess_type(p),
                }
                for p in sorted(target.iterdir())
            ]
            return JSONResponse({"path": path, "entries": entries})
        return FileResponse(target, media_type=_guess_type(target))

    # --- running a job ---

    def _job_env(self, job: Job) -> tuple[dict[str, str], list[str]]:
        env = dict(os.environ)
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        env["OGC_JOB_ID"] = job.job_id
        for var in ("NO_PROXY", "no_proxy"):
            env[var] = ",".join(filter(None, [LOOPBACK, env.get(var)]))
        preserve = sorted(k for k in env if k.startswith(PRESERVE_PREFIXES) or k in PRESERVE_NAMES)
        return env, preserve

    def _command(self, job: Job, preserve: list[str]) -> list[str]:
        cmd = [sys.executable, "-c", CWLTOOL, "--no-container", "--disable-color", "--skip-schemas"]
        cmd += ["--outdir", str(job.out_dir), "--tmpdir-prefix", str(job.dir / "tmp") + "/"]
        if self.parallel:
            cmd.append("--parallel")
        for var in preserve:
            cmd += ["--preserve-environment", var]
        cmd += [job.package.cwl_target, str(job.dir / "job.json")]
        return cmd

    def _run(self, job: Job) -> None:
        try:
            self._run_job(job)
        except Exception as err:  # never leave a job "running" because of a bug here
            LOG.exception("job %s: internal error", job.job_id)
            self._finish(job, JobStatus.failed, f"internal error: {err}")

    def _run_job(self, job: Job) -> None:
        with self._slots:
            env, preserve = self._job_env(job)
            cmd = self._command(job, preserve)
            (job.dir / "command.json").write_text(json.dumps(cmd, indent=2))
            with job.lock:
                if job.dismissed:
                    self._finish(job, JobStatus.dismissed, job.message)
                    return
                now = _now()
                job.status, job.started, job.updated = JobStatus.running, now, now
                job.progress, job.message = 0, "cwltool started"
                with open(job.dir / "cwltool.stdout", "wb") as stdout:
                    job.proc = subprocess.Popen(
                        cmd,
                        cwd=job.dir,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=stdout,
                        stderr=subprocess.PIPE,
                    )
            proc = job.proc
            assert proc.stderr is not None
            tail: collections.deque[str] = collections.deque(maxlen=60)
            final: str | None = None
            with open(job.dir / "cwltool.stderr", "wb") as stderr:
                for raw in proc.stderr:
                    stderr.write(raw)
                    stderr.flush()
                    line = raw.decode("utf-8", "replace").rstrip()
                    tail.append(line)
                    match = _FINAL.search(line)
                    if match:
                        final = match.group(1)
                    self._progress(job, line)
            code = proc.wait()
            LOG.info("job %s: cwltool exited with %s (%s)", job.job_id, code, final)
            if job.dismissed:
                self._finish(job, JobStatus.dismissed, "dismissed")
                return
            if code == 0 and final == "success":
                try:
                    outputs = json.loads((job.dir / "cwltool.stdout").read_text(encoding="utf-8"))
                except ValueError as err:
                    self._finish(job, JobStatus.failed, f"cwltool printed no output object: {err}")
                    return
                job.outputs = outputs if isinstance(outputs, dict) else {}
                self._finish(job, JobStatus.successful, f"completed ({job.done} tool run(s))")
                return
            self._finish(job, JobStatus.failed, _failure_message(code, tail))

    def _progress(self, job: Job, line: str) -> None:
        match = _LINE.match(line)
        if not match:
            return
        kind, name, rest = match.groups()
        with job.lock:
            if job.status != JobStatus.running:
                return
            if kind == "job" and rest.startswith("completed"):
                job.done += 1
            elif kind == "job" and rest.startswith("/"):
                rest = "running"
            elif not (rest.startswith("start") or rest.startswith("completed")):
                return
            job.message = f"{kind} {name}: {rest}".replace("  ", " ") if name else f"{kind}: {rest}"
            job.progress = min(95, 5 + int(90 * job.done / max(job.expected, job.done + 1)))
            job.updated = _now()

    def _finish(self, job: Job, status: JobStatus, message: str | None) -> None:
        with job.lock:
            now = _now()
            job.finished = job.updated = now
            if status == JobStatus.successful:
                job.progress = 100
            if job.dismissed:
                status = JobStatus.dismissed
            job.status = status
            if message is not None:
                job.message = message

    # --- Part 2 ---

    async def deploy_process(
        self,
        w: str | None = None,
        request: fastapi.Request | None = None,
        response: fastapi.Response | None = None,
        **_kwargs: Any,
    ) -> ProcessSummary:
        assert request is not None and response is not None
        package = await self._package_from_request(request, w, prefer=None, is_new=True)
        with self._lock:
            if package.process_id in self._processes:
                shutil.rmtree(package.cwl_path.parent, ignore_errors=True)
                raise _duplicate(package.process_id)
            self._processes[package.process_id] = package
        LOG.info("deployed %s %s from %s", package.process_id, package.version, package.media_type)
        response.headers["Location"] = str(request.url_for("get_process", processID=package.process_id))
        return self._summary(package, request)

    async def replace_process(
        self,
        process_id: str,
        w: str | None = None,
        request: fastapi.Request | None = None,
        response: fastapi.Response | None = None,
        **_kwargs: Any,
    ) -> Response:
        assert request is not None
        self._check_mutable(process_id)
        package = await self._package_from_request(request, w, prefer=process_id, is_new=False)
        if package.process_id != process_id:
            raise _error(
                400,
                f"the package's process id is {package.process_id!r}, not {process_id!r}: replace "
                f"{process_id!r} with a package whose workflow id is {process_id!r} (or pick it with ?w=)",
            )
        with self._lock:
            self._check_mutable(process_id)
            self._processes[process_id] = package
        LOG.info("replaced %s with version %s", process_id, package.version)
        return Response(status_code=204)

    async def undeploy_process(self, process_id: str, *args: Any, **_kwargs: Any) -> Response:
        with self._lock:
            self._check_mutable(process_id)
            del self._processes[process_id]
        LOG.info("undeployed %s", process_id)
        # A Response, not None: wraptile's route would send its 204 with a JSON content-type.
        return Response(status_code=204)

    async def get_formal_description(
        self, process_id: str, request: fastapi.Request | None = None, **_kwargs: Any
    ) -> Response:
        package = self._get_package(process_id)
        accept = (request.headers.get("accept", "") if request is not None else "").lower()
        wanted = [m.split(";")[0].strip() for m in accept.split(",") if m.strip()]
        for media in wanted:
            if media == package.media_type or media in ("*/*", "application/*", "application/json"):
                break
            if media in (CWL_YAML, CWL_ANY) and package.cwl_media_type == CWL_YAML:
                return Response(package.cwl_text, media_type=CWL_YAML)
            if media == CWL_YAML:
                return Response(yaml.safe_dump(package.doc, sort_keys=False), media_type=CWL_YAML)
            if media in (CWL_JSON, CWL_ANY):
                return Response(json.dumps(package.doc, indent=2), media_type=CWL_JSON)
            if media == OGCAPPPKG:
                pkg = {
                    "processDescription": {"process": package.description},
                    "executionUnit": {"value": package.doc, "mediaType": CWL_JSON},
                }
                return Response(json.dumps(pkg, indent=2), media_type=OGCAPPPKG)
        return Response(package.body, media_type=package.media_type)

    def _check_mutable(self, process_id: str) -> None:
        package = self._get_package(process_id)
        if not package.mutable:
            raise _error(
                403,
                f"Process {process_id!r} is built into the server and cannot be replaced or undeployed",
                PART2_EXC + "immutable-process",
            )

    async def _package_from_request(
        self, request: fastapi.Request, w: str | None, *, prefer: str | None, is_new: bool
    ) -> Package:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in SUPPORTED:
            raise _error(
                415,
                f"Content-Type {media_type or '(none)'!r} is not supported; send the application package "
                f"as one of: {', '.join(SUPPORTED)}",
                PART2_EXC + "unsupported-media-type",
            )
        body = await request.body()
        if not body.strip():
            raise _error(400, "the request body is empty: send a CWL document or an OGC application package")
        if len(body) > MAX_PACKAGE_BYTES:
            raise _error(413, f"the package is larger than {MAX_PACKAGE_BYTES} bytes")
        overrides: dict[str, Any] = {}
        try:
            if media_type == OGCAPPPKG:
                cwl_text, cwl_media, overrides = await self._unpack_ogcapppkg(body)
            else:
                cwl_text, cwl_media = body.decode("utf-8"), media_type
            doc = cwl.parse(cwl_text, cwl_media)
            selection = cwl.select(doc, w, prefer)
        except cwl.WorkflowNotFound as err:
            raise _error(400, str(err), PART2_EXC + "workflow-not-found") from err
        except (cwl.PackageError, UnicodeDecodeError) as err:
            raise _error(400, f"unusable application package: {err}") from err
        if is_new and selection.process_id in self._processes:
            raise _duplicate(selection.process_id)

        cwl_is_json = cwl_media.endswith("json")
        rev_dir = self.workdir / "processes" / selection.process_id / uuid.uuid4().hex[:12]
        rev_dir.mkdir(parents=True)
        cwl_path = rev_dir / "package.cwl"
        # JSON is YAML, but cwltool's YAML parser dislikes some JSON layouts (tabs): re-dump it.
        cwl_path.write_text(json.dumps(doc, indent=2) if cwl_is_json else cwl_text, encoding="utf-8")
        (rev_dir / ("deployed.json" if media_type.endswith("json") else "deployed.yaml")).write_bytes(body)
        target = f"{cwl_path}#{selection.fragment}" if selection.fragment else str(cwl_path)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._validator, _validate_with_cwltool, target)
        except ImportError as err:
            shutil.rmtree(rev_dir, ignore_errors=True)
            raise _error(500, f"cwltool is not installed in the server's environment: {err}") from err
        except Exception as err:
            shutil.rmtree(rev_dir, ignore_errors=True)
            message = str(err).strip() or type(err).__name__
            raise _error(400, f"the CWL document is not valid CWL (cwltool): {message[:3000]}") from err

        description = cwl.describe(doc, selection)
        description = _merge_description(description, overrides)
        return Package(
            process_id=selection.process_id,
            description=description,
            doc=doc,
            selection=selection,
            cwl_path=cwl_path,
            body=body,
            media_type=media_type,
            cwl_media_type=CWL_JSON if cwl_is_json else CWL_YAML,
            cwl_text=cwl_text if not cwl_is_json else json.dumps(doc, indent=2),
        )

    async def _unpack_ogcapppkg(self, body: bytes) -> tuple[str, str, dict[str, Any]]:
        """An OGC application package -> (CWL text, its media type, processDescription fields)."""
        try:
            pkg = json.loads(body)
        except ValueError as err:
            raise cwl.PackageError(f"the application package is not valid JSON: {err}") from None
        if not isinstance(pkg, dict) or "executionUnit" not in pkg:
            raise cwl.PackageError("an application/ogcapppkg+json body needs an 'executionUnit'")
        units = pkg["executionUnit"]
        units = units if isinstance(units, list) else [units]
        unit = next((u for u in units if isinstance(u, dict) and ("value" in u or "href" in u)), None)
        if unit is None:
            raise cwl.PackageError(
                "executionUnit must be {'value': <CWL>, 'mediaType': 'application/cwl+yaml'} "
                "or {'href': <URL of the CWL>, 'type': 'application/cwl+yaml'}"
            )
        media = str(unit.get("mediaType") or unit.get("type") or "").split(";")[0].strip().lower()
        if media and media not in (
            CWL_YAML,
            CWL_JSON,
            CWL_ANY,
            "application/json",
            "application/yaml",
            "text/yaml",
        ):
            raise cwl.PackageError(
                f"executionUnit media type {media!r} is not CWL (use {CWL_YAML} or {CWL_JSON})"
            )
        if "value" in unit:
            value = unit["value"]
            if isinstance(value, dict):
                text, media = json.dumps(value), CWL_JSON
            elif isinstance(value, str):
                text, media = value, media if media.endswith("json") else CWL_YAML
            else:
                raise cwl.PackageError("executionUnit.value must be the CWL document (a string or an object)")
        else:
            href = unit["href"]
            if not isinstance(href, str) or not href.startswith(("http://", "https://")):
                raise cwl.PackageError(f"executionUnit.href must be an http(s) URL, got {href!r}")
            text, served = await asyncio.to_thread(_fetch, href)
            media = media or served
            media = CWL_JSON if media.endswith("json") else CWL_YAML
        overrides = pkg.get("processDescription") or {}
        if not isinstance(overrides, dict):
            raise cwl.PackageError("processDescription must be an object")
        if isinstance(overrides.get("process"), dict):  # {"process": {...}} (the schema's wrapper)
            overrides = overrides["process"]
        return text, media, overrides


def _duplicate(process_id: str) -> ServiceException:
    return _error(
        409,
        f"Process {process_id!r} is already deployed; replace it with PUT /processes/{process_id} "
        "or undeploy it first",
        PART2_EXC + "duplicated-process",
    )


def _merge_description(described: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """processDescription of an ogcapppkg over what the CWL says; the id always comes from the CWL."""
    merged = dict(described)
    for key in ("title", "description", "keywords", "metadata", "version", "additionalParameters"):
        if overrides.get(key) is not None:
            merged[key] = overrides[key]
    for section in ("inputs", "outputs"):
        given = overrides.get(section)
        if not isinstance(given, dict):
            continue
        merged[section] = {name: dict(entry) for name, entry in merged.get(section, {}).items()}
        for name, entry in given.items():
            if name in merged[section] and isinstance(entry, dict):
                merged[section][name].update({k: v for k, v in entry.items() if v is not None})
    return merged


def _fetch(href: str) -> tuple[str, str]:
    """GET an executionUnit href -> (text, media type). Proxies are bypassed for loopback."""
    handlers: list[Any] = []
    if re.match(r"https?://(127\.0\.0\.1|localhost)[:/]", href):
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(href, headers={"Accept": f"{CWL_YAML}, {CWL_JSON};q=0.9, */*;q=0.5"})
    try:
        with opener.open(request, timeout=FETCH_TIMEOUT) as resp:
            data = resp.read(MAX_PACKAGE_BYTES + 1)
            served = resp.headers.get_content_type()
    except OSError as err:
        raise cwl.PackageError(f"cannot fetch executionUnit.href {href}: {err}") from None
    if len(data) > MAX_PACKAGE_BYTES:
        raise cwl.PackageError(f"{href} is larger than {MAX_PACKAGE_BYTES} bytes")
    return data.decode("utf-8"), served


def _validate_with_cwltool(target: str) -> None:
    """Load and validate ``file.cwl[#id]`` as cwltool does before running it (raises if invalid)."""
    from cwltool.context import LoadingContext
    from cwltool.load_tool import fetch_document, make_tool, resolve_and_validate_document
    from cwltool.workflow import default_make_tool

    path, _, fragment = target.partition("#")
    uri = Path(path).as_uri() + (f"#{fragment}" if fragment else "")
    context = LoadingContext(
        {"construct_tool_object": default_make_tool, "do_update": True, "skip_schemas": True}
    )
    context, document, uri = fetch_document(uri, context)
    context, uri = resolve_and_validate_document(context, document, uri)
    make_tool(uri, context)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """Stop a cwltool run, by PIDs: freeze cwltool (SIGSTOP, so it starts no more tools), SIGKILL it,
    SIGTERM the tools it started, SIGKILL those still there after KILL_GRACE.

    cwltool's own SIGTERM handling is not used: it waits up to 10 s for each running tool before
    killing it and, observed with cwltool 3.3, hangs that long when the signal arrives while it
    waits for a tool. psutil (a cwltool dependency) finds the tools and guards against PID reuse.
    """
    import psutil

    try:
        proc.send_signal(signal.SIGSTOP)  # Popen.send_signal: only while the PID is still ours
        tools = list(psutil.Process(proc.pid).children(recursive=True))
    except (ProcessLookupError, psutil.Error):
        tools = []
    proc.kill()
    for tool in tools:
        with contextlib.suppress(psutil.Error):
            tool.terminate()

    def reap() -> None:
        _, alive = psutil.wait_procs(tools, timeout=KILL_GRACE)
        for tool in alive:
            with contextlib.suppress(psutil.Error):
                tool.kill()

    if tools:
        threading.Thread(target=reap, name=f"reap-{proc.pid}", daemon=True).start()


def _failure_message(code: int, tail: collections.deque[str]) -> str:
    """The last lines of cwltool's stderr, without its INFO chatter (the tool's own errors stay)."""
    lines = [line for line in tail if line.strip() and not line.startswith("INFO ")]
    last = lines[-MESSAGE_LINES:] or ["(no output on stderr)"]
    return f"cwltool exited with status {code}:\n" + "\n".join(last)


def _uri_path(location: str) -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(location).path) if location.startswith("file:") else location


def _guess_type(path: Path) -> str:
    if path.suffix.lower() in (".tif", ".tiff"):
        return "image/tiff; application=geotiff"
    if path.suffix.lower() in (".json", ".geojson"):
        return "application/json"
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _stac_kind(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    if kind == "Feature" and "stac_version" in value:
        return "Item"
    if kind == "FeatureCollection" and isinstance(value.get("features"), list):
        features = value["features"]
        if all(isinstance(f, dict) and "stac_version" in f for f in features):
            return "ItemCollection"
    if kind in ("Catalog", "Collection") and "stac_version" in value:
        return kind
    return None


def _read_stac(path: Path) -> Any:
    """The parsed content of a File output that is STAC JSON (Item, FeatureCollection, ...), else None."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_STAC_BYTES:
            return None
        with open(path, "rb") as f:
            if f.read(1024).lstrip()[:1] != b"{":
                return None
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if _stac_kind(value) else None


service = CwlDruService(
    title="OGC API - Processes Part 2 (CWL, cwltool --no-container)",
    # launch.py's _spawn looks for its per-start nonce on the landing page.
    description="Deploy, Replace, Undeploy of CWL application packages for airflow-provider-ogc "
    f"(instance {os.environ.get('OGC_PART2_NONCE', '-')})",
)
