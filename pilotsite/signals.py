"""What the site announces, so that apps act on it without the site importing them (the
integrations app records both in its audit log).

- `admin_changed`: sent when the admin logs an addition, change or deletion (a deletion
  before the row goes). Sender: the model class. Arguments: `request`, `verb` ("add",
  "change" or "delete"), `obj` (the instance), `detail` (Django's change message as one line,
  field names only, never values).
- `task_resubmitted`: sent when a superuser resubmits a django-q2 task from the admin.
  Sender: the task's model class. Arguments: `request`, `task` (the `Success` or `Failure`
  row; its `func` is the dotted path that was queued again).
"""

from django.dispatch import Signal

admin_changed = Signal()
task_resubmitted = Signal()
