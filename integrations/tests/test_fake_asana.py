"""The fake Asana behaves like Asana where the product depends on it, and refuses what Asana would."""

import hashlib
import hmac
import json
import threading

import httpx
import pytest
from jsonschema_path import SchemaPath
from openapi_core import V30ResponseValidator
from openapi_core.testing import MockRequest, MockResponse

from integrations.asana.fake.api import FakeAsana
from integrations.asana.fake.validation import CONTRACT_PATH


@pytest.fixture
def fake() -> FakeAsana:
    fake = FakeAsana()
    fake.seed()
    return fake


def client(fake: FakeAsana, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        transport=fake.transport(),
        base_url=fake.base_url,
        headers={"Authorization": f"Bearer {token or fake.token}"},
    )


def only_error(response: httpx.Response) -> str:
    (error,) = response.json()["errors"]
    return error["message"]


def test_an_opt_field_outside_the_enum_is_rejected_and_recorded(fake):
    task = fake.add_task(fake.workspace_gid, "T")

    response = client(fake).get(f"/tasks/{task}", params={"opt_fields": "name,bogus"})

    assert response.status_code == 400
    assert "opt_fields" in only_error(response) and "bogus" in only_error(response)
    assert len(fake.violations) == 1 and "bogus" in fake.violations[0]


def test_a_write_without_the_data_envelope_is_rejected(fake):
    task = fake.add_task(fake.workspace_gid, "T")

    response = client(fake).put(f"/tasks/{task}", json={"completed": True})

    assert response.status_code == 400 and "data" in only_error(response)
    assert fake.task(task)["completed"] is False
    assert fake.violations


def test_an_operation_outside_the_contract_is_rejected(fake):
    response = client(fake).get("/portfolios")

    assert response.status_code == 400 and "not in the contract" in only_error(response)
    assert fake.violations


def test_a_missing_token_gets_401_in_asanas_envelope(fake):
    response = httpx.Client(transport=fake.transport(), base_url=fake.base_url).get("/users/me")

    assert response.status_code == 401
    (error,) = response.json()["errors"]
    assert error["message"] == "Not Authorized" and {"help", "phrase"} <= error.keys()
    assert fake.violations == []


def test_an_unknown_token_gets_401(fake):
    assert client(fake, token="2/1/2:ffff").get("/users/me").status_code == 401


def test_gids_are_checked_like_asana(fake):
    api = client(fake)

    assert api.get("/tasks/abc").status_code == 400
    assert api.get("/tasks/123").status_code == 404


def test_objects_in_a_workspace_the_user_is_not_in_are_hidden(fake):
    other = fake.add_workspace("Other Co")
    task = fake.add_task(other, "Secret")

    assert client(fake).get(f"/tasks/{task}").status_code == 404
    assert client(fake).get(f"/workspaces/{other}").status_code == 403


def test_pagination_returns_every_item_once_across_pages(fake):
    tag = fake.add_tag(fake.workspace_gid, "pilot")
    tasks = [fake.add_task(fake.workspace_gid, f"T{i}", tags=[tag]) for i in range(7)]
    api, seen, params = client(fake), [], {"limit": 3}

    while True:
        page = api.get(f"/tags/{tag}/tasks", params=params).json()
        seen += [task["gid"] for task in page["data"]]
        if page["next_page"] is None:
            break
        params = {"limit": 3, "offset": page["next_page"]["offset"]}

    assert seen == tasks


def test_a_large_list_without_limit_is_refused(fake):
    tag = fake.add_tag(fake.workspace_gid, "pilot")
    for i in range(101):
        fake.add_task(fake.workspace_gid, f"T{i}", tags=[tag])

    response = client(fake).get(f"/tags/{tag}/tasks")

    assert response.status_code == 400 and "pagination" in only_error(response)


def test_a_forged_offset_is_rejected(fake):
    tag = fake.add_tag(fake.workspace_gid, "pilot")

    response = client(fake).get(f"/tags/{tag}/tasks", params={"limit": 5, "offset": "garbage!"})

    assert response.status_code == 400 and "offset" in only_error(response)


def test_opt_fields_pick_fields_and_nested_fields(fake):
    task = fake.add_task(fake.workspace_gid, "T", notes="n", tags=["pilot"])

    data = client(fake).get(f"/tasks/{task}", params={"opt_fields": "notes,tags.name"}).json()

    assert data["data"] == {
        "gid": task,
        "resource_type": "task",
        "notes": "n",
        "tags": [
            {"gid": fake.task(task)["tags"][0]["gid"], "resource_type": "tag", "name": "pilot"}
        ],
    }


def test_without_opt_fields_only_the_compact_record_comes_back(fake):
    task = fake.add_task(fake.workspace_gid, "T", notes="n")

    data = client(fake).get(f"/tasks/{task}").json()["data"]

    assert data == {"gid": task, "resource_type": "task", "name": "T"}


def test_adding_a_tag_twice_is_harmless(fake):
    task = fake.add_task(fake.workspace_gid, "T")
    tag = fake.add_tag(fake.workspace_gid, "done")
    api = client(fake)

    for _ in range(2):
        assert api.post(f"/tasks/{task}/addTag", json={"data": {"tag": tag}}).json() == {"data": {}}

    assert fake.tag_names(task) == ["done"]


def test_a_rich_text_comment_must_be_wrapped_in_body(fake):
    task = fake.add_task(fake.workspace_gid, "T")
    api = client(fake)

    bad = api.post(f"/tasks/{task}/stories", json={"data": {"html_text": "<b>hi</b>"}})
    good = api.post(
        f"/tasks/{task}/stories", json={"data": {"html_text": "<body><b>hi</b></body>"}}
    )

    assert (bad.status_code, good.status_code) == (400, 201)
    assert [c["text"] for c in fake.comments(task)] == ["hi"]


def test_a_mention_in_a_comment_is_stored_as_a_link_naming_the_user(fake):
    task = fake.add_task(fake.workspace_gid, "T")
    ann = fake.add_user("Ann Asana", "ann@example.com", [fake.workspace_gid])
    api = client(fake)

    body = {"html_text": f'<body><a data-asana-gid="{ann}"/> which day?</body>'}
    posted = api.post(f"/tasks/{task}/stories", json={"data": body})

    assert posted.status_code == 201
    [comment] = fake.comments(task)
    assert comment["text"] == "@Ann Asana which day?"
    assert f'data-asana-gid="{ann}"' in comment["html_text"]
    assert 'data-asana-type="user"' in comment["html_text"]


def test_a_mention_of_no_visible_user_is_refused(fake):
    task = fake.add_task(fake.workspace_gid, "T")
    api = client(fake)

    body = {"html_text": '<body><a data-asana-gid="999"/> hi</body>'}
    refused = api.post(f"/tasks/{task}/stories", json={"data": body})

    assert refused.status_code == 400 and "html_text" in only_error(refused)
    assert fake.comments(task) == []


def test_tag_stories_name_their_tag_and_comments_are_not_system_stories(fake):
    task = fake.add_task(fake.workspace_gid, "T")
    ann = fake.add_user("Ann Asana", "ann@example.com", [fake.workspace_gid])
    fake.person_changes_task(task, ann, add=["pilot"])
    fake.person_comments(task, ann, "staging")
    api = client(fake)

    listed = api.get(
        f"/tasks/{task}/stories",
        params={"opt_fields": "resource_subtype,type,created_by,tag.name,text"},
    ).json()["data"]

    tagged, comment = listed
    assert (tagged["resource_subtype"], tagged["type"]) == ("added_to_tag", "system")
    assert tagged["tag"]["name"] == "pilot" and tagged["created_by"]["gid"] == ann
    assert (comment["resource_subtype"], comment["type"], comment["text"]) == (
        "comment_added",
        "comment",
        "staging",
    )


def test_an_external_attachment_is_posted_as_multipart(fake):
    task = fake.add_task(fake.workspace_gid, "T")
    form = {
        "parent": task,
        "resource_subtype": "external",
        "url": "https://x.test/r",
        "name": "Report",
    }

    response = client(fake).post("/attachments", files={k: (None, v) for k, v in form.items()})

    assert response.status_code == 200
    (attachment,) = fake.attachments(task)
    assert (attachment["name"], attachment["view_url"], attachment["host"]) == (
        "Report",
        "https://x.test/r",
        "external",
    )


def test_goals_answer_402_when_the_plan_lacks_them(fake):
    fake.goals_payment_required = True

    response = client(fake).get("/goals", params={"workspace": fake.workspace_gid})

    assert response.status_code == 402 and response.json()["errors"][0]["message"]


def test_an_injected_429_carries_retry_after_and_is_used_up(fake):
    fake.inject("429", retry_after=7)
    api = client(fake)

    first, second = api.get("/users/me"), api.get("/users/me")

    assert (first.status_code, first.headers["Retry-After"]) == (429, "7")
    assert second.status_code == 200


def test_an_injected_500_fires_only_where_it_matches(fake):
    fake.inject("500", times=2, method="GET", path=r"^/workspaces/")
    api = client(fake)

    assert api.get("/users/me").status_code == 200
    statuses = [api.get(f"/workspaces/{fake.workspace_gid}").status_code for _ in range(3)]

    assert statuses == [500, 500, 200]


def test_a_dropped_connection_reaches_an_http_client(fake_asana):
    fake_asana.inject("drop")
    headers = {"Authorization": f"Bearer {fake_asana.token}"}

    with httpx.Client(base_url=fake_asana.base_url, headers=headers) as api:
        with pytest.raises(httpx.RemoteProtocolError):
            api.get("/users/me")
        assert api.get("/users/me").status_code == 200


def test_a_write_whose_answer_is_lost_was_still_applied(fake):
    task = fake.add_task(fake.workspace_gid, "T")
    fake.inject("timeout-after-apply", method="POST")

    with pytest.raises(httpx.ReadTimeout):
        client(fake).post(f"/tasks/{task}/stories", json={"data": {"text": "once"}})

    assert [c["text"] for c in fake.comments(task)] == ["once"]


@pytest.mark.parametrize("status", ["500", "502", "503", "504"])
def test_a_write_answered_5xx_after_apply_was_still_applied(fake, status):
    task = fake.add_task(fake.workspace_gid, "T")
    fake.inject(f"{status}-after-apply", method="POST")

    answer = client(fake).post(f"/tasks/{task}/stories", json={"data": {"text": "once"}})

    assert answer.status_code == int(status)
    assert [c["text"] for c in fake.comments(task)] == ["once"]


def test_a_gateway_502_or_504_is_an_html_page_not_an_asana_envelope(fake):
    fake.inject("504")

    answer = client(fake).get("/users/me")

    assert answer.status_code == 504
    assert answer.headers["Content-Type"].startswith("text/html")


def test_several_tags_may_share_one_name(fake):
    # Asana does not make tag names unique: two people can each create `pilot`.
    api = client(fake)
    path = f"/workspaces/{fake.workspace_gid}/tags"
    first = api.post(path, json={"data": {"name": "pilot"}}).json()["data"]["gid"]
    second = api.post(path, json={"data": {"name": "pilot"}}).json()["data"]["gid"]

    listed = api.get(path, params={"opt_fields": "name"}).json()["data"]

    assert first != second
    assert [t["gid"] for t in listed if t["name"] == "pilot"] == [first, second]


def test_completing_an_approval_through_the_api_approves_it(fake):
    task = fake.add_task(fake.workspace_gid, "Approve the Q3 budget", resource_subtype="approval")
    assert (fake.task(task)["approval_status"], fake.task(task)["completed"]) == ("pending", False)

    client(fake).put(f"/tasks/{task}", json={"data": {"completed": True}})

    assert (fake.task(task)["approval_status"], fake.task(task)["completed"]) == ("approved", True)


def test_a_rejected_approval_counts_as_completed(fake):
    task = fake.add_task(
        fake.workspace_gid, "Approve it", resource_subtype="approval", approval_status="rejected"
    )

    read = client(fake).get(f"/tasks/{task}", params={"opt_fields": "completed,approval_status"})

    assert read.json()["data"] | {} == {
        "gid": task,
        "resource_type": "task",
        "completed": True,
        "approval_status": "rejected",
    }


class Receiver:
    """A webhook target that echoes the handshake secret (unless told not to)."""

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.received: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request)
        secret = request.headers.get("X-Hook-Secret")
        headers = {"X-Hook-Secret": secret} if secret and self.echo else {}
        return httpx.Response(200, headers=headers)


def create_webhook(fake: FakeAsana, receiver: Receiver) -> httpx.Response:
    fake.outbound_transport = httpx.MockTransport(receiver)
    project = fake.add_project(fake.workspace_gid, "P")
    data = {"resource": project, "target": "https://pilot.test/hooks/abc"}
    return client(fake).post("/webhooks", json={"data": data})


def test_creating_a_webhook_performs_the_handshake_first(fake):
    receiver = Receiver()

    response = create_webhook(fake, receiver)

    assert response.status_code == 201
    (handshake,) = receiver.received
    (hook,) = fake.webhooks()
    assert handshake.headers["X-Hook-Secret"] == hook["secret"] and handshake.content == b""


def test_a_webhook_whose_target_does_not_echo_the_secret_is_refused(fake):
    response = create_webhook(fake, Receiver(echo=False))

    assert response.status_code == 400 and fake.webhooks() == []


def test_deliveries_are_signed_with_the_handshake_secret(fake):
    receiver = Receiver()
    gid = create_webhook(fake, receiver).json()["data"]["gid"]
    event = fake.event(fake.add_task(fake.workspace_gid, "T"), "added")

    assert fake.deliver(gid, [event]) == 200

    delivery = receiver.received[-1]
    secret = fake.webhooks()[0]["secret"].encode()
    expected = hmac.new(secret, delivery.content, hashlib.sha256).hexdigest()
    assert delivery.headers["X-Hook-Signature"] == expected
    assert json.loads(delivery.content) == {"events": [event]}


def test_the_fixture_serves_a_seeded_fake_and_points_settings_at_it(fake_asana, settings):
    headers = {"Authorization": f"Bearer {fake_asana.token}"}

    me = httpx.get(f"{settings.ASANA_API_BASE_URL}/users/me", headers=headers).json()["data"]

    assert fake_asana.base_url == settings.ASANA_API_BASE_URL
    assert me["gid"] == fake_asana.user_gid
    assert fake_asana.requests == [("GET", "/users/me", {})]


RESPONSE_CHECKS = [
    ("GET", "/users/me", "name,email,workspaces.name"),
    ("GET", "/workspaces/{workspace}", "name,is_organization"),
    ("GET", "/workspaces/{workspace}/tags", "name,workspace.name"),
    ("GET", "/tags/{tag}/tasks", "name,notes,html_notes,completed,completed_at,created_at,"
     "modified_at,tags.name,projects.name,permalink_url,workspace,assignee,due_on,parent"),
    ("GET", "/tasks/{task}/stories", "text,html_text,created_at,created_by.name,resource_subtype"),
    ("GET", "/tasks/{task}/stories", "resource_subtype,text,html_text,created_at,created_by.name,"
     "tag.name"),
    ("GET", "/tasks/{task}", "name,assignee.name,due_on,due_at,custom_fields.name,"
     "custom_fields.display_value,custom_fields.number_value,custom_fields.enum_value.name,"
     "memberships.project.name,memberships.section.name,parent.name,num_subtasks"),
    ("GET", "/tasks/{subtask}", "name,parent.name,num_subtasks"),
    ("GET", "/tasks/{task}/subtasks", "name,completed"),
    ("GET", "/tasks/{task}", "assignee.name,created_by"),
    ("GET", "/attachments?parent={task}", "name,resource_subtype,host,view_url,permanent_url,"
     "download_url,created_at,parent.name,connected_to_app"),
    ("GET", "/goals?workspace={workspace}", "name,notes,html_notes,due_on,start_on,status,"
     "owner.name,workspace,metric,metric.current_number_value,metric.target_number_value,"
     "metric.unit,time_period,team,current_status_update"),
    ("GET", "/goal_relationships?supported_goal={goal}",
     "resource_subtype,supported_goal.name,supporting_resource.name,contribution_weight"),
    ("GET", "/goals/{subgoal}/parentGoals", "name,owner,status"),
    ("GET", "/projects/{project}", "name,workspace,archived,permalink_url"),
    ("GET", "/tasks/999", None),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "opt_fields"), RESPONSE_CHECKS)
def test_responses_match_asanas_contract(fake, method, path, opt_fields):
    project = fake.add_project(fake.workspace_gid, "P")
    task = fake.add_task(fake.workspace_gid, "T", tags=["pilot"], projects=[project])
    fake.set_task(task, assignee=fake.user_gid, due_at="2026-12-01T17:00:00.000Z")
    fake.set_task(task, sections={project: fake.add_section(project, "Doing")})
    fake.set_custom_field(task, "Estimate", 3.5, subtype="number")
    fake.set_custom_field(task, "Stage", "Review", subtype="enum")
    fake.set_custom_field(task, "Notes", None)
    fake.add_attachment(task, "spec.pdf")
    subtask = fake.add_task(fake.workspace_gid, "Sub", parent=task)
    goal = fake.add_goal(fake.workspace_gid, "G", owner_gid=fake.user_gid, metric={})
    subgoal = fake.add_goal(fake.workspace_gid, "S", parent_gid=goal)
    api = client(fake)
    api.post(f"/tasks/{task}/stories", json={"data": {"text": "hi"}})
    api.post(f"/tasks/{task}/addTag", json={"data": {"tag": fake.add_tag(fake.workspace_gid, "x")}})
    ids = dict(workspace=fake.workspace_gid, task=task, project=project, goal=goal, subgoal=subgoal)
    ids["subtask"] = subtask
    ids["tag"] = fake.task(task)["tags"][0]["gid"]
    url = httpx.URL(path.format(**ids), params={"opt_fields": opt_fields} if opt_fields else {})

    response = api.request(method, url)

    spec = SchemaPath.from_dict(json.loads(CONTRACT_PATH.read_text()))
    request = MockRequest(
        "https://app.asana.com", method, "/api/1.0" + url.path, args=dict(url.params)
    )
    result = MockResponse(response.content, status_code=response.status_code)
    errors = list(V30ResponseValidator(spec).iter_errors(request, result))
    assert errors == [], [repr(e.__cause__) for e in errors]


@pytest.mark.parametrize("status", ["green", "yellow", "red", "achieved", "partial", "missed"])
def test_goals_carry_the_statuses_asana_sends(fake, status):
    gid = fake.add_goal(fake.workspace_gid, "A goal", status=status)
    fake.update_goal(gid, status=None)  # nullable: nobody has rated it
    fake.update_goal(gid, status="dropped")


@pytest.mark.parametrize("status", ["on_track", "at_risk", "completed", "Green", ""])
def test_a_goal_status_asana_never_sends_cannot_be_built(fake, status):
    with pytest.raises(ValueError, match="never sends goal status"):
        fake.add_goal(fake.workspace_gid, "A goal", status=status)


def test_a_held_request_waits_unapplied_until_released_while_others_go_on(fake):
    task = fake.add_task(fake.workspace_gid, "T")
    held = fake.hold(method="PUT", path=rf"^/tasks/{task}$")
    answers: list[int] = []
    writer = threading.Thread(
        target=lambda: answers.append(
            client(fake).put(f"/tasks/{task}", json={"data": {"completed": True}}).status_code
        )
    )
    writer.start()
    assert held.arrived.wait(30)
    assert client(fake).get(f"/tasks/{task}").status_code == 200
    assert fake.task(task)["completed"] is False and answers == []
    held.release()
    writer.join(30)
    assert answers == [200] and fake.task(task)["completed"] is True


def test_a_task_read_shows_its_people_dates_fields_sections_and_family(fake):
    project = fake.add_project(fake.workspace_gid, "Web")
    task = fake.add_task(fake.workspace_gid, "Ship it", projects=[project])
    ann = fake.add_user("Ann Lee", "ann@example.com", [fake.workspace_gid])
    fake.set_task(task, assignee=ann, due_at="2026-12-01T17:00:00.000Z")
    fake.set_task(task, sections={project: fake.add_section(project, "Doing")})
    fake.set_custom_field(task, "Estimate", 3, subtype="number")
    fake.set_custom_field(task, "Stage", "Review", subtype="enum")
    fake.set_custom_field(task, "Notes", None)
    sub = fake.add_task(fake.workspace_gid, "Write the notes", parent=task)
    fields = (
        "assignee.name,due_on,due_at,custom_fields.name,custom_fields.display_value,"
        "memberships.project.name,memberships.section.name,num_subtasks"
    )

    data = client(fake).get(f"/tasks/{task}", params={"opt_fields": fields}).json()["data"]
    parent = client(fake).get(f"/tasks/{sub}", params={"opt_fields": "parent.name"}).json()

    assert data["assignee"] == {"gid": ann, "resource_type": "user", "name": "Ann Lee"}
    assert (data["due_on"], data["due_at"]) == ("2026-12-01", "2026-12-01T17:00:00.000Z")
    assert [(f["name"], f["display_value"]) for f in data["custom_fields"]] == [
        ("Estimate", "3"),
        ("Stage", "Review"),
        ("Notes", None),
    ]
    assert [(m["project"]["name"], m["section"]["name"]) for m in data["memberships"]] == [
        ("Web", "Doing")
    ]
    assert data["num_subtasks"] == 1
    assert parent["data"]["parent"]["name"] == "Ship it"


def test_the_assignees_email_cannot_be_asked_of_a_task_read(fake):
    task = fake.add_task(fake.workspace_gid, "T")

    response = client(fake).get(f"/tasks/{task}", params={"opt_fields": "assignee.email"})

    assert response.status_code == 400
    assert "assignee.email" in only_error(response)


def test_subtasks_are_listed_with_their_completion(fake):
    task = fake.add_task(fake.workspace_gid, "Parent")
    fake.add_task(fake.workspace_gid, "First", parent=task, completed=True)
    fake.add_task(fake.workspace_gid, "Second", parent=task)

    listed = client(fake).get(
        f"/tasks/{task}/subtasks", params={"opt_fields": "name,completed", "limit": 100}
    )

    assert [(t["name"], t["completed"]) for t in listed.json()["data"]] == [
        ("First", True),
        ("Second", False),
    ]


def test_adding_a_tag_leaves_a_story_naming_the_tag(fake):
    task = fake.add_task(fake.workspace_gid, "T")
    tag = fake.add_tag(fake.workspace_gid, "pilot")
    api = client(fake)
    api.post(f"/tasks/{task}/addTag", json={"data": {"tag": tag}})

    stories = api.get(
        f"/tasks/{task}/stories", params={"opt_fields": "resource_subtype,tag.name,created_by"}
    ).json()["data"]

    assert [(s["resource_subtype"], s["tag"]["name"]) for s in stories] == [
        ("added_to_tag", "pilot")
    ]
    assert stories[0]["created_by"]["gid"] == fake.user_gid
