"""Operators for OGC API - Processes Part 2: deploy, replace and undeploy application packages."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_ogc._compat import AirflowFailException
from airflow_provider_ogc.exceptions import fail_permanent_errors

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_provider_ogc.hooks.ogc_processes import OGCProcessesHook

__all__ = [
    "DeployProcessOperator",
    "GetProcessPackageOperator",
    "ReplaceProcessOperator",
    "UndeployProcessOperator",
]

IF_EXISTS = ("fail", "replace", "skip")
XCOM_PROCESS_ID = "process_id"


class _PackageOperator(BaseOperator):
    """Shared by the operators that send or name a package: the hook and the package's source."""

    def __init__(self, *, ogc_conn_id: str = "ogc_processes_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ogc_conn_id = ogc_conn_id

    @cached_property
    def hook(self) -> OGCProcessesHook:
        from airflow_provider_ogc.hooks.ogc_processes import OGCProcessesHook

        return OGCProcessesHook(ogc_conn_id=self.ogc_conn_id)


class _PackageSender(_PackageOperator):
    """Shared by the operators that send a package: where it comes from, and its media type."""

    def __init__(
        self,
        *,
        package: Any = None,
        package_url: str | None = None,
        content_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.package = package
        self.package_url = package_url
        self.content_type = content_type

    def _package(self, purpose: str) -> tuple[Any, str | None]:
        """The package to send and its media type; a bad one fails the task without retries."""
        try:
            return _resolve_package(self.package, self.package_url, self.content_type)
        except (ValueError, TypeError, FileNotFoundError) as err:
            raise AirflowFailException(f"Cannot {purpose} this package: {err}") from err


def _resolve_package(
    package: Any, package_url: str | None, content_type: str | None
) -> tuple[Any, str | None]:
    """The package to send and its media type: a reference for ``package_url``; a file path is read."""
    from pathlib import Path

    from airflow_provider_ogc.packages import OGC_APPPKG_JSON, reference_package

    if (package is None) == (package_url is None):
        raise ValueError("Give exactly one of package (a dict, CWL text or a file path) and package_url")
    if package_url is not None:
        return reference_package(package_url, content_type or "application/cwl+yaml"), OGC_APPPKG_JSON
    if (
        isinstance(package, str)
        and "\n" not in package
        and Path(package).suffix in (".cwl", ".yaml", ".yml", ".json")
    ):
        return Path(package), content_type  # a path to the package file
    return package, content_type


class DeployProcessOperator(_PackageSender):
    """
    Deploy an application package as a process (``POST /processes``), and push its process id.

    :param package: the package: a dict (CWL or OGC application package), CWL text (YAML or JSON),
        or the path of a file (``.cwl``, ``.yaml``, ``.yml``, ``.json``) (templated).
    :param package_url: instead of ``package``, the URL of a CWL document for the server to fetch
        (sent as an OGC application package whose ``executionUnit`` references it) (templated).
    :param content_type: ``application/cwl+yaml``, ``application/cwl+json`` or
        ``application/ogcapppkg+json``; inferred from the package when omitted.
    :param workflow_id: the ``w`` parameter: which workflow of a multi-workflow CWL to deploy (templated).
    :param if_exists: when a process of that id is already deployed (read from the process list):
        ``fail`` (default), ``replace`` it (``PUT``), or ``skip`` deploying.
    :param process_id: the process id to check ``if_exists`` against, when the package cannot tell
        (e.g. a ``package_url``).
    :param ogc_conn_id: the ``ogc_processes`` connection.
    :return: the deployed process id (also XCom ``process_id``).
    """

    template_fields: Sequence[str] = ("package", "package_url", "workflow_id", "process_id")
    ui_color = "#e8f1d4"

    def __init__(
        self,
        *,
        workflow_id: str | None = None,
        if_exists: str = "fail",
        process_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if if_exists not in IF_EXISTS:
            raise ValueError(f"if_exists must be one of {', '.join(IF_EXISTS)}, got {if_exists!r}")
        self.workflow_id = workflow_id
        self.if_exists = if_exists
        self.process_id = process_id

    def execute(self, context: Context) -> str:
        from airflow_provider_ogc.packages import package_process_id

        with fail_permanent_errors(self.hook):
            package, media_type = self._package("deploy")
            try:
                expected = self.process_id or (
                    None if self.package_url else package_process_id(package, self.workflow_id)
                )
            except (ValueError, TypeError) as err:
                raise AirflowFailException(f"Cannot deploy this package: {err}") from err
            if expected and self._is_deployed(expected):
                if self.if_exists == "fail":
                    raise AirflowFailException(
                        f"Process {expected!r} is already deployed on {self.hook.base_url} "
                        "(use if_exists='replace' or 'skip')"
                    )
                if self.if_exists == "skip":
                    self.log.info("Process %s is already deployed; skipping (if_exists='skip')", expected)
                    return self._done(context, expected)
                self.log.info("Process %s is already deployed; replacing it (if_exists='replace')", expected)
                replaced = self.hook.replace_process(expected, package, content_type=media_type)
                return self._done(context, replaced.process_id)
            deployed = self.hook.deploy_process(
                package, content_type=media_type, workflow_id=self.workflow_id
            )
        self.log.info("Deployed process %s (%s)", deployed.process_id, deployed.location or "no Location")
        return self._done(context, deployed.process_id)

    def _is_deployed(self, process_id: str) -> bool:
        return any(summary.get("id") == process_id for summary in self.hook.list_processes())

    def _done(self, context: Context, process_id: str) -> str:
        context["ti"].xcom_push(key=XCOM_PROCESS_ID, value=process_id)
        return process_id


class ReplaceProcessOperator(_PackageSender):
    """
    Replace a deployed process with a new package version (``PUT /processes/{processId}``).

    :param process_id: the process to replace (templated).
    :param package: as for :class:`DeployProcessOperator` (templated).
    :param package_url: as for :class:`DeployProcessOperator` (templated).
    :param content_type: the package's media type; inferred when omitted.
    :param ogc_conn_id: the ``ogc_processes`` connection.
    :return: the process id.
    """

    template_fields: Sequence[str] = ("process_id", "package", "package_url")
    ui_color = "#e8f1d4"

    def __init__(self, *, process_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.process_id = process_id

    def execute(self, context: Context) -> str:
        with fail_permanent_errors(self.hook):
            package, media_type = self._package("replace with")
            replaced = self.hook.replace_process(self.process_id, package, content_type=media_type)
        self.log.info("Replaced process %s", replaced.process_id)
        context["ti"].xcom_push(key=XCOM_PROCESS_ID, value=replaced.process_id)
        return replaced.process_id


class UndeployProcessOperator(_PackageOperator):
    """
    Undeploy a process (``DELETE /processes/{processId}``).

    Give it ``trigger_rule="all_done"`` to clean up even when an upstream task failed.

    :param process_id: the process to remove (templated), e.g. ``{{ ti.xcom_pull('deploy') }}``.
    :param ignore_missing: succeed when the process is not deployed (404).
    :param ogc_conn_id: the ``ogc_processes`` connection.
    """

    template_fields: Sequence[str] = ("process_id",)
    ui_color = "#f3e0d6"

    def __init__(self, *, process_id: str, ignore_missing: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.process_id = process_id
        self.ignore_missing = ignore_missing

    def execute(self, context: Context) -> None:
        from airflow_provider_ogc.exceptions import OGCProcessesAPIError

        with fail_permanent_errors(self.hook):
            try:
                self.hook.undeploy_process(self.process_id)
            except OGCProcessesAPIError as err:
                if err.http_status == 404 and self.ignore_missing:
                    self.log.info("Process %s is not deployed; nothing to undeploy", self.process_id)
                    return
                raise
        self.log.info("Undeployed process %s", self.process_id)


class GetProcessPackageOperator(_PackageOperator):
    """
    Read a deployed process's application package (``GET /processes/{processId}/package``).

    :param process_id: the process (templated).
    :param ogc_conn_id: the ``ogc_processes`` connection.
    :return: ``{"content_type": ..., "content": dict or CWL text}``.
    """

    template_fields: Sequence[str] = ("process_id",)

    def __init__(self, *, process_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.process_id = process_id

    def execute(self, context: Context) -> dict[str, Any]:

        with fail_permanent_errors(self.hook):
            package = self.hook.get_process_package(self.process_id)
        return {"content_type": package.content_type, "content": package.content}
