"""Forms of the integrations tab. They only check shapes; Asana is asked by the services."""

from typing import Any

from django import forms
from django.core.validators import MaxLengthValidator
from django.db import models

from integrations.asana.tokens import TokenField
from integrations.models import AsanaConnection, Employee, gid_validator


def setting_field(name: str, **overrides: Any) -> forms.Field:
    """The form field for the connection setting `name`, built from the model field: its
    default as the initial value, its length and its validators (AsanaConnection holds the
    limits once). `overrides` are form field arguments such as `label`."""
    model_field = AsanaConnection._meta.get_field(name)
    assert isinstance(model_field, models.Field)  # settings are concrete fields
    # The form field adds its own length check from max_length; the model's is not repeated.
    validators = [v for v in model_field.validators if not isinstance(v, MaxLengthValidator)]
    form_field = model_field.formfield(validators=validators, **overrides)
    assert form_field is not None  # every setting's field is editable
    return form_field


class ConnectForm(forms.Form):
    # render_value=False: a token typed into a form that failed is never sent back to the page.
    token = TokenField(
        label="Personal access token",
        help_text="Asana: My settings → Apps → Developer apps → Create new token.",
    )
    workspace_gid = forms.CharField(
        label="Workspace GID",
        max_length=32,
        validators=[gid_validator],
        widget=forms.TextInput(attrs={"inputmode": "numeric", "placeholder": "1204567890123456"}),
    )
    pilot_tag = setting_field("pilot_tag", label="Pilot tag")
    polling_enabled = setting_field("polling_enabled", label="Polling on")
    poll_interval = setting_field("poll_interval", label="Poll interval (seconds)")
    skip_backlog = setting_field(
        "skip_backlog",
        label="Skip tasks already tagged",
        help_text="Record tasks that carry the pilot tag today as skipped instead of running them.",
    )

    # What the page may show again after a failed post: everything but the token.
    KEPT = ("workspace_gid", "pilot_tag", "polling_enabled", "poll_interval", "skip_backlog")

    @classmethod
    def kept_values(cls, data) -> dict:
        kept = {name: data.get(name, "") for name in cls.KEPT}
        # An unticked box is absent from the post; without this it would come back ticked.
        for name in ("polling_enabled", "skip_backlog"):
            kept[name] = name in data
        return kept


class ReplaceTokenForm(forms.Form):
    """A new personal access token for a connection; every setting stays as it is."""

    token = TokenField(
        label="New personal access token",
        help_text="Checked with Asana before it replaces the stored one.",
    )


class ConnectionSettingsForm(forms.Form):
    # A plain form (not a ModelForm) so validating it does not touch the connection: the
    # service compares the stored values with these to know what changed.
    pilot_tag = setting_field("pilot_tag", label="Pilot tag")
    polling_enabled = setting_field("polling_enabled", label="Polling on")
    poll_interval = setting_field("poll_interval", label="Poll interval (seconds)")
    skip_backlog = setting_field("skip_backlog", label="Skip tasks already tagged", help_text="")
    watch_method = setting_field(
        "watch_method",
        label="Watch by",
        # Not required: a post without it keeps the stored method.
        required=False,
        empty_value=None,
        help_text="automatic: search, one request per idle poll, where the plan has it (detected; "
        "else the tag list); tag list: no indexing delay; webhooks first: slower polling while "
        "a webhook is healthy.",
    )
    goals_sync_interval = setting_field(
        "goals_sync_interval",
        label="Goal sync interval (seconds)",
        required=False,
        help_text="86400 = once a day.",
    )
    rollout_mode = setting_field(
        "rollout_mode",
        label="Rollout mode",
        # Not required: a post without it keeps the stored mode.
        required=False,
        empty_value=None,
    )

    @classmethod
    def for_connection(cls, connection: AsanaConnection, data=None) -> "ConnectionSettingsForm":
        return cls(
            data,
            prefix=f"c{connection.pk}",
            initial={name: getattr(connection, name) for name in cls.base_fields},
        )


class SafetyRailsForm(forms.Form):
    """The thresholds of a connection's safety rails (`integrations.pipeline.breaker`)."""

    breaker_error_percent = setting_field(
        "breaker_error_percent", label="Pause when Asana errors exceed (%)"
    )
    breaker_min_requests = setting_field(
        "breaker_min_requests",
        label="of at least (requests)",
        help_text="Fewer requests than this in the window never pause.",
    )
    breaker_error_window = setting_field(
        "breaker_error_window", label="within (seconds)", help_text="60 to 3600."
    )
    breaker_cooldown = setting_field(
        "breaker_cooldown",
        label="Probe Asana after (seconds)",
        help_text="Paused for errors, one request per cool-down; it resumes when Asana answers.",
    )
    breaker_failures = setting_field("breaker_failures", label="Pause after failed runs in a row")
    breaker_claims_per_hour = setting_field(
        "breaker_claims_per_hour",
        label="Pause after claims in an hour",
        help_text="A whole project tagged at once is paused here until someone resumes.",
    )

    @classmethod
    def for_connection(cls, connection: AsanaConnection, data=None) -> "SafetyRailsForm":
        return cls(
            data,
            prefix=f"r{connection.pk}",
            initial={name: getattr(connection, name) for name in cls.base_fields},
        )


class MappingForm(forms.Form):
    """One unmapped employee: a workspace user from the list, or a GID typed in."""

    employee = forms.ModelChoiceField(queryset=Employee.objects.all(), widget=forms.HiddenInput)
    asana_user = forms.CharField(required=False, validators=[gid_validator])
    asana_user_gid = forms.CharField(
        label="or GID", required=False, max_length=32, validators=[gid_validator]
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        chosen, typed = data.get("asana_user"), data.get("asana_user_gid")
        if chosen and typed and chosen != typed:
            raise forms.ValidationError(
                "Choose a user from the list or type a GID, not both with different values."
            )
        if not self.errors and not (chosen or typed):
            raise forms.ValidationError("Choose an Asana user or type their GID.")
        data["gid"] = chosen or typed
        return data


def fields_with_errors(
    form: forms.Form, errors: dict[str, list[str]]
) -> list[tuple[forms.BoundField, list[str]]]:
    """Pair each field with the errors kept for it across the redirect, and point its input
    at them (`aria-invalid`, `aria-describedby`) the way Django does for a bound form."""
    rows = []
    for bound in form:
        field_errors = errors.get(bound.name, [])
        if field_errors:
            described_by = [f"{bound.auto_id}_error"]
            if bound.help_text:
                described_by.append(f"{bound.auto_id}_helptext")
            bound.field.widget.attrs.update(
                {"aria-invalid": "true", "aria-describedby": " ".join(described_by)}
            )
        rows.append((bound, field_errors))
    return rows
