"""Admin form posts for the CSV import on the integrations tab: upload → preview → confirm.

Thin callers of `integrations.people.csv_import` (the same plan and policy as
`manage.py employees import`). The preview writes nothing; the uploaded text waits in the
session (at most EMPLOYEE_IMPORT_MAX_BYTES) keyed by its digest, and "Import" plans it again
against the database as it is then, so what is written is never older than the click.
"""

import hashlib
import io

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from integrations.models import AsanaConnection
from integrations.people.csv_import import CsvImportError, Outcome, apply_plan, plan_import
from pilotsite.admin import back_to_tab, tab_post

IMPORT_PERMS = ("integrations.add_employee", "integrations.change_employee")
_PENDING = "integrations.pending_import"
# The preview lists every rejected row (up to this many) and a sample of the others.
REJECTED_SHOWN = 1000
OTHERS_SHOWN = 200


class UploadForm(forms.Form):
    file = forms.FileField(label="CSV file")
    connection = forms.ModelChoiceField(
        queryset=AsanaConnection.objects.all(),
        required=False,
        label="Workspace for asana_user_gid",
        empty_label="the only connected workspace",
    )


def _named(handle: io.BytesIO | io.StringIO, name: str) -> io.BytesIO | io.StringIO:
    """A file object with the uploaded file's name, which `plan_import` reports."""
    handle.name = name
    return handle


def _back() -> HttpResponse:
    return back_to_tab("integrations", "employees")


def _refuse(request: HttpRequest, problem: str) -> HttpResponse:
    messages.error(request, f"Nothing imported: {problem}.")
    return _back()


def _start_over(request: HttpRequest) -> HttpResponse:
    """A GET of the preview or confirm address (the preview reloaded, a bookmark): back to
    the upload form, saying what to do; the file is not resent by a reload."""
    messages.info(
        request,
        "To import employees, choose the CSV file under Employees and press "
        "“Preview import”; then check the preview and press Import.",
    )
    return _back()


@tab_post(*IMPORT_PERMS, on_get=_start_over)
def preview(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _refuse(request, "choose a CSV file to upload")
    upload = form.cleaned_data["file"]
    limit = settings.EMPLOYEE_IMPORT_MAX_BYTES
    if upload.size > limit:
        return _refuse(
            request,
            f"{upload.name} is {upload.size:,} bytes, more than the {limit:,} the admin "
            "accepts (EMPLOYEE_IMPORT_MAX_BYTES); split it or use “manage.py employees import”",
        )
    connection = form.cleaned_data["connection"]
    data = upload.read()
    try:
        plan = plan_import(_named(io.BytesIO(data), upload.name), connection=connection)
    except CsvImportError as exc:
        return _refuse(request, str(exc))
    text = data.decode("utf-8-sig")
    digest = hashlib.sha256(data).hexdigest()
    request.session[_PENDING] = {
        "name": upload.name,
        "text": text,
        "digest": digest,
        "connection": plan.connection.pk if plan.connection else None,
    }
    rejected = [r for r in plan.rows if r.outcome == Outcome.REJECTED]
    others = [r for r in plan.rows if r.outcome != Outcome.REJECTED]
    context = {
        **admin.site.each_context(request),
        "title": f"Import {upload.name}",
        "plan": plan,
        "counts": plan.counts(),
        "digest": digest,
        "rejected": rejected[:REJECTED_SHOWN],
        "rejected_more": max(len(rejected) - REJECTED_SHOWN, 0),
        "others": others[:OTHERS_SHOWN],
        "others_more": max(len(others) - OTHERS_SHOWN, 0),
        "writes": plan.count(Outcome.CREATE) + plan.count(Outcome.UPDATE),
    }
    return TemplateResponse(request, "integrations/import_preview.html", context)


@tab_post(*IMPORT_PERMS, on_get=_start_over)
def confirm(request: HttpRequest) -> HttpResponse:
    pending = request.session.get(_PENDING)
    if not pending or pending["digest"] != request.POST.get("digest"):
        return _refuse(
            request,
            "the preview has expired or another file was previewed since; upload the file again",
        )
    connection = (
        AsanaConnection.objects.filter(pk=pending["connection"]).first()
        if pending["connection"]
        else None
    )
    try:
        plan = plan_import(
            _named(io.StringIO(pending["text"]), pending["name"]), connection=connection
        )
    except CsvImportError as exc:
        return _refuse(request, str(exc))
    report = apply_plan(plan, actor=request.user)
    del request.session[_PENDING]
    if report.rejected:
        messages.warning(
            request,
            f"Imported {pending['name']}: {report.summary()}. "
            "The rejected rows are listed in the audit log; fix them and import the file again.",
        )
    else:
        messages.success(request, f"Imported {pending['name']}: {report.summary()}.")
    return _back()


urlpatterns = [
    path("employees/import/preview/", preview, name="import-preview"),
    path("employees/import/confirm/", confirm, name="import-confirm"),
]
