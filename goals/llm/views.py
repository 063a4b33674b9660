"""The status-draft pages: ask for a draft of a goal's status update, review it, approve or
reject it. Hidden (404) unless the model is configured; only users holding
`goals.add_statusdraft`, and only for goals in their scope (goals.scope)."""

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from goals.llm import drafts
from goals.llm.client import LLMError, is_enabled
from goals.models import Goal, StatusDraft
from goals.scope import scope_to_reports
from pilotsite.admin import tab_post

PERMISSION = "goals.add_statusdraft"


def _allowed(request: HttpRequest) -> User:
    """The signed-in user, when they may ask for, review and decide drafts."""
    if not is_enabled():
        raise Http404("Status drafts are not configured.")
    user = request.user
    if not (
        user.is_authenticated and user.is_active and user.is_staff and user.has_perm(PERMISSION)
    ):
        raise PermissionDenied
    return user


@tab_post(PERMISSION)
def request_draft(request: HttpRequest, goal_id: int) -> HttpResponse:
    user = _allowed(request)
    goal = get_object_or_404(scope_to_reports(Goal.objects.all(), user), pk=goal_id)
    try:
        draft = drafts.request_draft(goal, user)
    except LLMError as exc:
        messages.error(request, str(exc))
        return redirect(reverse("admin:index") + f"?tab=goals#employee-{goal.employee_id}")
    return redirect("admin:goals:draft", draft_id=draft.pk)


@require_http_methods(["GET", "POST"])
def review(request: HttpRequest, draft_id: int) -> HttpResponse:
    """GET: the draft with its figures, an editable text and the status type; POST
    `decision=approve` (with `text`, `status_type`) or `decision=reject`."""
    user = _allowed(request)
    scoped = scope_to_reports(StatusDraft.objects.select_related("goal"), user, "goal__employee")
    draft = get_object_or_404(scoped, pk=draft_id)
    text, status_type = draft.text, draft.status_type
    if request.method == "POST":
        text = request.POST.get("text", "")
        status_type = request.POST.get("status_type", "")
        try:
            if request.POST.get("decision") == "reject":
                drafts.reject(draft, user)
                messages.success(request, "Draft rejected; nothing was posted to Asana.")
            else:
                draft = drafts.approve(draft, user, text, status_type)
                if draft.state == StatusDraft.State.POSTED:
                    messages.success(request, "Posted to Asana as a status update on the goal.")
                else:
                    messages.error(request, f"Not posted: {draft.error} You may approve it again.")
            return redirect("admin:goals:draft", draft_id=draft.pk)
        except drafts.DraftError as exc:
            messages.error(request, str(exc))
    return TemplateResponse(
        request,
        "goals/status_draft.html",
        {
            "title": f"Status update for {draft.goal.name}",
            "draft": draft,
            "text": text,
            "status_type": status_type,
            "status_types": StatusDraft.StatusType.choices,
            "open": draft.state in (StatusDraft.State.PENDING, StatusDraft.State.FAILED),
            "site_header": "pilotsite",
            "has_permission": True,
        },
    )
