"""The motion vocabulary is written once (connectwise.checks.choices); the Django choices repeat it as literals
because migrations need them, and this test holds them equal."""

from connectwise.checks import agreement_creates, agreement_findings, agreement_mapping, agreement_targets
from connectwise.checks.choices import MOTION_LABELS, MOTIONS
from onboarding.forms import AgreementDefaultsForm
from onboarding.management.commands import tenant_customers
from onboarding.models import CompanyChoice


def test_the_django_motion_choices_are_the_checks_motions():
    assert dict(CompanyChoice.Motion.choices) == MOTION_LABELS
    assert tuple(MOTION_LABELS) == MOTIONS


def test_every_other_copy_reads_the_one_vocabulary():
    for module in (agreement_targets, agreement_creates, agreement_findings, agreement_mapping):
        assert module.MOTION_LABELS is MOTION_LABELS, module.__name__
    assert dict(AgreementDefaultsForm.MOTIONS) == MOTION_LABELS
    assert set(tenant_customers.MOTIONS) == set(MOTIONS)
