"""The policy table: which roles may perform each action. The single source the app (and the role-matrix
tests) read; ``admin`` may do everything and is not listed."""

from __future__ import annotations

from enum import StrEnum

from app.auth.models import Role


class Action(StrEnum):
    UNIT_READ = "unit:read"
    UNIT_WRITE = "unit:write"
    USER_READ = "user:read"
    USER_WRITE = "user:write"
    PERSON_READ = "person:read"
    PERSON_WRITE = "person:write"
    CRITERIA_WRITE = "criteria:write"
    EVALUATION_READ = "evaluation:read"
    EVALUATION_EDIT = "evaluation:edit"
    EVALUATION_REVIEW = "evaluation:review"
    DECISION_READ = "decision:read"
    DECISION_SIGN = "decision:sign"
    PLAN_READ = "plan:read"
    PLAN_WRITE = "plan:write"
    TRAINING_READ = "training:read"
    TRAINING_WRITE = "training:write"
    AGGREGATE_READ = "aggregate:read"
    IMPORT_WRITE = "import:write"
    EXPORT_READ = "export:read"
    REPORT_READ = "report:read"
    REPORT_SUBMIT = "report:submit"
    REPORT_REVIEW = "report:review"
    REPORTING_READ = "reporting:read"
    CALENDAR_WRITE = "calendar:write"
    WEBHOOK_READ = "webhook:read"
    WEBHOOK_WRITE = "webhook:write"


_ALL_UNIT_ROLES = frozenset(
    {Role.ORG_ADMIN, Role.ASSESSOR, Role.APPROVER, Role.VIEWER, Role.MEMBER, Role.INTEGRATION}
)

POLICY: dict[Action, frozenset[Role]] = {
    Action.UNIT_READ: _ALL_UNIT_ROLES,
    Action.UNIT_WRITE: frozenset({Role.ORG_ADMIN}),
    Action.USER_READ: frozenset({Role.ORG_ADMIN}),
    Action.USER_WRITE: frozenset({Role.ORG_ADMIN}),
    Action.PERSON_READ: frozenset({Role.ORG_ADMIN, Role.ASSESSOR, Role.APPROVER, Role.INTEGRATION}),
    Action.PERSON_WRITE: frozenset({Role.ORG_ADMIN}),
    Action.CRITERIA_WRITE: frozenset({Role.ORG_ADMIN}),
    # Person-level evaluation data; a member reaches their own evaluation through ``own``.
    Action.EVALUATION_READ: frozenset({Role.ORG_ADMIN, Role.ASSESSOR, Role.APPROVER, Role.INTEGRATION}),
    # Self-assessment on someone's behalf (the person themself always may, through ``own``).
    Action.EVALUATION_EDIT: frozenset({Role.ORG_ADMIN}),
    Action.EVALUATION_REVIEW: frozenset({Role.ASSESSOR}),
    Action.DECISION_READ: frozenset({Role.ORG_ADMIN, Role.ASSESSOR, Role.APPROVER, Role.INTEGRATION}),
    Action.DECISION_SIGN: frozenset({Role.APPROVER}),
    # A plan applies to its unit's whole subtree, so it is also readable from below (plans/service.py).
    Action.PLAN_READ: _ALL_UNIT_ROLES,
    Action.PLAN_WRITE: frozenset({Role.ORG_ADMIN}),
    # Attendance lists are person-level data: not for viewers.
    Action.TRAINING_READ: frozenset({Role.ORG_ADMIN, Role.ASSESSOR, Role.APPROVER, Role.INTEGRATION}),
    Action.TRAINING_WRITE: frozenset({Role.ORG_ADMIN}),
    # Counts only, never person-level data: viewers may read them, members may not.
    Action.AGGREGATE_READ: frozenset(
        {Role.VIEWER, Role.INTEGRATION, Role.ORG_ADMIN, Role.ASSESSOR, Role.APPROVER}
    ),
    # Bulk loads of units and people (app/imports): what an org_admin may do one by one, plus the
    # integration accounts of education offices' scripts.
    Action.IMPORT_WRITE: frozenset({Role.ORG_ADMIN, Role.INTEGRATION}),
    # Person-level CSV exports (app/reports/exports.py): never for viewers.
    Action.EXPORT_READ: frozenset({Role.ORG_ADMIN, Role.INTEGRATION}),
    # The annual report holds counts only, like the aggregates.
    Action.REPORT_READ: frozenset({Role.ORG_ADMIN, Role.INTEGRATION, Role.VIEWER}),
    # The reporting cycle (app/reporting): the unit's head (approver) or its administrator submits; the
    # same roles of a unit above accept or return. Submissions and completeness hold counts only.
    Action.REPORT_SUBMIT: frozenset({Role.ORG_ADMIN, Role.APPROVER}),
    Action.REPORT_REVIEW: frozenset({Role.ORG_ADMIN, Role.APPROVER}),
    Action.REPORTING_READ: frozenset({Role.ORG_ADMIN, Role.APPROVER, Role.VIEWER, Role.INTEGRATION}),
    Action.CALENDAR_WRITE: frozenset({Role.ORG_ADMIN}),
    # Webhooks (app/webhooks): the associations' own tools and the education offices' scripts.
    Action.WEBHOOK_READ: frozenset({Role.ORG_ADMIN, Role.INTEGRATION}),
    Action.WEBHOOK_WRITE: frozenset({Role.ORG_ADMIN, Role.INTEGRATION}),
}

# Roles a service account (client credentials, no person behind it) may hold.
SERVICE_ACCOUNT_ROLES = frozenset({Role.INTEGRATION, Role.VIEWER})


def roles_for(action: Action) -> frozenset[Role]:
    return POLICY[action]
