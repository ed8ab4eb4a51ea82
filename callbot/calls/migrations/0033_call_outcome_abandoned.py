"""One outcome for an incoming call nobody answered: ``abandoned``.

The history called a call that rang out (408/1106) "failed" and one whose
caller hung up "not answered", while the reports and the board's KPI strip
counted both as abandoned. The stored outcome now has ``abandoned`` (incoming,
never established, ended by ringing out or the caller, not rejected or
redirected by Callbot: ``states.call_outcome``), which all three read; stored
calls that fit are moved to it (the rule copied here, as migrations must not
import code that may change after them).
"""

from django.db import migrations, models
from django.db.models import Exists, OuterRef, Q


def forward(apps, schema_editor):
    Call = apps.get_model("calls", "Call")
    Action = apps.get_model("calls", "Action")
    passed_on = Action.objects.filter(
        call=OuterRef("pk"),
        kind__in=("reject", "redirect"),
        status__in=("sent", "completed"),
    )
    Call.objects.filter(
        direction="incoming",
        state="terminated",
        established_at__isnull=True,
        outcome__in=("unanswered", "failed"),
    ).filter(
        Q(result_code__isnull=True)
        | Q(result_code__lt=400)
        | Q(result_code=408, result_subcode=1106)
    ).exclude(Exists(passed_on)).update(outcome="abandoned")


def backward(apps, schema_editor):
    Call = apps.get_model("calls", "Call")
    Call.objects.filter(outcome="abandoned", result_code__gte=400).update(
        outcome="failed"
    )
    Call.objects.filter(outcome="abandoned").update(outcome="unanswered")


class Migration(migrations.Migration):
    dependencies = [("calls", "0032_call_party")]

    operations = [
        migrations.AlterField(
            model_name="call",
            name="outcome",
            field=models.CharField(
                choices=[
                    ("live", "Live"),
                    ("answered", "Answered"),
                    ("unanswered", "Not answered"),
                    ("abandoned", "Abandoned"),
                    ("transferred", "Transferred"),
                    ("failed", "Failed"),
                ],
                default="live",
                max_length=16,
            ),
        ),
        migrations.RunPython(forward, backward),
    ]
