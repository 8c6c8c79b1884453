"""Imports every model module so ``Base.metadata`` is complete (for Alembic and the mappers)."""

from app.aggregates import models as aggregates_models
from app.alerts import models as alerts_models
from app.auth import models as auth_models
from app.collectives import models as collectives_models
from app.core import audit
from app.core import idempotency_store as idempotency_models
from app.criteria import models as criteria_models
from app.decisions import models as decisions_models
from app.evaluations import models as evaluations_models
from app.imports import models as imports_models
from app.orgs import models as orgs_models
from app.people import models as people_models
from app.plans import models as plans_models
from app.reorganisations import models as reorganisations_models
from app.reporting import models as reporting_models
from app.trainings import models as trainings_models
from app.webhooks import models as webhooks_models

__all__ = [
    "aggregates_models",
    "alerts_models",
    "audit",
    "auth_models",
    "collectives_models",
    "criteria_models",
    "decisions_models",
    "evaluations_models",
    "idempotency_models",
    "imports_models",
    "orgs_models",
    "people_models",
    "plans_models",
    "reorganisations_models",
    "reporting_models",
    "trainings_models",
    "webhooks_models",
]
