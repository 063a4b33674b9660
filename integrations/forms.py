"""Forms of the integrations tab. They only check shapes; Asana is asked by the services."""

from django import forms

from integrations.models import AsanaConnection, Employee, gid_validator


class ConnectForm(forms.Form):
    # render_value=False: a token typed into a form that failed is never sent back to the page.
    token = forms.CharField(
        label="Personal access token",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Asana: My settings → Apps → Developer apps → Create new token.",
        strip=True,
    )
    workspace_gid = forms.CharField(
        label="Workspace GID",
        max_length=32,
        validators=[gid_validator],
        widget=forms.TextInput(attrs={"inputmode": "numeric", "placeholder": "1204567890123456"}),
    )
    pilot_tag = forms.CharField(label="Pilot tag", max_length=100, initial="pilot")
    skip_backlog = forms.BooleanField(
        label="Skip tasks already tagged",
        required=False,
        help_text="Record tasks that carry the pilot tag today as skipped instead of running them.",
    )


class ConnectionSettingsForm(forms.Form):
    # A plain form (not a ModelForm) so validating it does not touch the connection: the
    # service compares the stored values with these to know what changed.
    pilot_tag = forms.CharField(label="Pilot tag", max_length=100)
    polling_enabled = forms.BooleanField(label="Polling on", required=False)
    poll_interval = forms.IntegerField(label="Poll interval (seconds)", min_value=5)
    skip_backlog = forms.BooleanField(label="Skip tasks already tagged", required=False)

    @classmethod
    def for_connection(cls, connection: AsanaConnection, data=None) -> "ConnectionSettingsForm":
        return cls(
            data,
            prefix=f"c{connection.pk}",
            initial={name: getattr(connection, name) for name in cls.base_fields},
        )


class MappingForm(forms.Form):
    """One unmapped employee: a workspace user from the list, or a GID typed in."""

    employee = forms.ModelChoiceField(queryset=Employee.objects.all(), widget=forms.HiddenInput)
    asana_user = forms.CharField(required=False, validators=[gid_validator])
    asana_user_gid = forms.CharField(
        label="or GID", required=False, max_length=32, validators=[gid_validator]
    )

    def clean(self) -> dict:
        data = super().clean()
        chosen, typed = data.get("asana_user"), data.get("asana_user_gid")
        if chosen and typed and chosen != typed:
            raise forms.ValidationError(
                "Choose a user from the list or type a GID, not both with different values."
            )
        if not self.errors and not (chosen or typed):
            raise forms.ValidationError("Choose an Asana user or type their GID.")
        data["gid"] = chosen or typed
        return data
