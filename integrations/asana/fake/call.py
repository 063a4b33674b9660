"""What a fake Asana handler gets: the request (`Call`) with helpers that apply Asana's rules
for looking objects up, visibility, required fields, opt_fields and pagination."""

from collections.abc import Mapping
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

from integrations.asana.fake.render import ApiError, full, paginate, project

if TYPE_CHECKING:
    from integrations.asana.fake.api import FakeAsana

Result = tuple[int, dict[str, Any]]
_PARENT_LINK = {"story": "target", "attachment": "parent", "goal_relationship": "supported_goal"}


def workspace_of(objects: Mapping[str, dict[str, Any]], record: dict[str, Any]) -> str | None:
    kind = record["resource_type"]
    if kind == "workspace":
        return record["gid"]
    if kind == "webhook":
        return record["_workspace"]
    if kind in _PARENT_LINK:
        parent = objects.get(record[_PARENT_LINK[kind]])
        return workspace_of(objects, parent) if parent else None
    return record.get("workspace")


@dataclass
class Call:
    fake: "FakeAsana"
    user_gid: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    data: dict[str, Any]

    @property
    def objects(self) -> dict[str, dict[str, Any]]:
        return self.fake._objects

    def get(self, resource_type: str | None, gid: str | None, field: str) -> dict[str, Any]:
        """The object the caller may see, or Asana's 400/403/404."""
        if not gid:
            raise ApiError(400, f"{field}: Missing input")
        if not gid.isdigit():
            raise ApiError(400, f"{field}: Not a Long: {gid}")
        record = self.objects.get(gid)
        if record is None or resource_type not in (None, record["resource_type"]):
            raise ApiError(404, f"{field}: Unknown object: {gid}")
        mine = set(self.objects[self.user_gid]["workspaces"])
        if record["resource_type"] == "user":
            visible = bool(mine & set(record["workspaces"]))
        else:
            visible = workspace_of(self.objects, record) in mine
        if not visible:
            if record["resource_type"] == "workspace":
                raise ApiError(403, f"{field}: You do not have access to workspace {gid}")
            raise ApiError(404, f"{field}: Unknown object: {gid}")
        return record

    def require(self, name: str) -> Any:
        value = self.data.get(name)
        if value is None or value == "":
            raise ApiError(400, f"{name}: Missing input")
        return value

    def records(self, resource_type: str, **where: Any) -> list[dict[str, Any]]:
        return self.fake._records(resource_type, **where)

    def out(self, record: dict[str, Any]) -> dict[str, Any]:
        return project(full(self.objects, record), self.query.get("opt_fields"))

    def one(self, record: dict[str, Any], status: int = 200) -> Result:
        return status, {"data": self.out(record)}

    def page(self, records: list[dict[str, Any]]) -> Result:
        # Only the page's records are rendered: listing 50,000 tasks costs 500 small pages.
        return 200, paginate(records, self.query, self.path, self.fake.base_url, self.out)

    def check_goals_plan(self) -> None:
        if self.fake.goals_payment_required:
            raise ApiError(
                402,
                "Goals are only available on premium plans. Please upgrade to use this feature.",
            )


def rich_text(field: str, value: str) -> str:
    """Asana's rule for html_text/html_notes: well-formed XML wrapped in <body>; returns plain text."""
    value = value.strip()
    if not (value.startswith("<body>") and value.endswith("</body>")):
        raise ApiError(400, f"{field}: XML is invalid: rich text must be wrapped in <body> tags")
    try:
        root = ElementTree.fromstring(value)  # noqa: S314 - a short string from the client under test
    except ElementTree.ParseError as exc:
        raise ApiError(400, f"{field}: XML is invalid: {exc}") from exc
    return "".join(root.itertext())


def parse_form(content_type: str, body: bytes) -> dict[str, str]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if name:
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            fields[str(name)] = text
    return fields
