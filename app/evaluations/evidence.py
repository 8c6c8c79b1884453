"""Evidence (minh chứng) uploads, downloads and deletions. A file is written before its row; if the
request's transaction is lost the file is removed again, and a deleted row's file goes only after the
deletion has committed — so neither an orphan file nor a row without its file is left behind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from fastapi import UploadFile
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Action
from app.auth.scope import Subject
from app.core.audit import user_id_of
from app.core.db import on_commit, on_rollback, utcnow
from app.core.errors import NotFound, ValidationFailed
from app.criteria.terms import terms_of
from app.evaluations import repository as repo
from app.evaluations.models import Evaluation, Evidence
from app.evaluations.schemas import EvidenceRead
from app.evaluations.storage import EvidenceStore
from app.evaluations.workflow import audit_step, load, require_editable


@dataclass(frozen=True)
class NewEvidence:
    """One file to attach: the indicator it proves, the upload, an optional description."""

    indicator_id: int
    file: UploadFile
    description: str | None = None


async def upload(
    session: AsyncSession,
    subject: Subject,
    store: EvidenceStore,
    max_bytes: int,
    evaluation_id: int,
    indicator_id: int,
    file: UploadFile,
    description: str | None,
) -> EvidenceRead:
    (added,) = await upload_many(
        session, subject, store, max_bytes, evaluation_id, [NewEvidence(indicator_id, file, description)]
    )
    return added


async def upload_many(
    session: AsyncSession,
    subject: Subject,
    store: EvidenceStore,
    max_bytes: int,
    evaluation_id: int,
    files: Sequence[NewEvidence],
) -> list[EvidenceRead]:
    """Attach ``files`` to one evaluation in one step (an upload is a step of one file; the demo attaches
    an evaluation's ten at once): the evaluation is loaded, locked and checked once and every indicator
    before any file is stored; then each file is stored and gets its row and audit row (one flush)."""
    evaluation = (
        await load(session, subject, evaluation_id, Action.EVALUATION_EDIT, for_update=True)
    ).evaluation
    require_editable(evaluation, "Evidence")
    indicators = {i.id: i for i in (await terms_of(session, evaluation.criteria_set_id)).indicators}
    for item in files:
        if item.indicator_id not in indicators:
            raise ValidationFailed(
                f"Indicator {item.indicator_id} is not part of this evaluation's criteria set.",
                details={"indicator_id": item.indicator_id},
            )
    added: list[Evidence] = []
    for item in files:
        stored = await store.save(item.file, max_bytes)
        on_rollback(session, partial(store.delete, stored.key))
        added.append(
            Evidence(
                evaluation_id=evaluation.id,
                indicator_id=item.indicator_id,
                filename=stored.filename,
                storage_key=stored.key,
                size=stored.size,
                sha256=stored.sha256,
                content_type=stored.content_type,
                description=item.description,
                uploaded_by=user_id_of(subject),
            )
        )
    session.add_all(added)
    evaluation.updated_at = utcnow()
    await session.flush()
    for evidence in added:
        await audit_step(
            session,
            subject,
            evaluation.id,
            "evidence_added",
            after={
                "evidence_id": evidence.id,
                "indicator": indicators[evidence.indicator_id].number,
                "filename": evidence.filename,
                "sha256": evidence.sha256,
            },
        )
    return [EvidenceRead.model_validate(evidence) for evidence in added]


async def _visible_evidence(
    session: AsyncSession, subject: Subject, evidence_id: int, action: Action, *, for_update: bool = False
) -> tuple[Evidence, Evaluation]:
    missing = f"Evidence {evidence_id} not found."
    evidence = await repo.get_evidence(session, evidence_id)
    if evidence is None:
        raise NotFound(missing)
    try:
        loaded = await load(session, subject, evidence.evaluation_id, action, for_update=for_update)
    except NotFound:
        raise NotFound(missing) from None
    return evidence, loaded.evaluation


async def content(
    session: AsyncSession, subject: Subject, store: EvidenceStore, evidence_id: int
) -> tuple[Evidence, Path]:
    evidence, _ = await _visible_evidence(session, subject, evidence_id, Action.EVALUATION_READ)
    path = store.path_for(evidence.storage_key)
    if not path.exists():
        raise NotFound(f"Evidence {evidence_id}'s file is missing from storage.")
    return evidence, path


async def delete(session: AsyncSession, subject: Subject, store: EvidenceStore, evidence_id: int) -> None:
    evidence, evaluation = await _visible_evidence(
        session, subject, evidence_id, Action.EVALUATION_EDIT, for_update=True
    )
    require_editable(evaluation, "Evidence")
    key = evidence.storage_key
    await session.delete(evidence)
    evaluation.updated_at = utcnow()
    await session.flush()
    on_commit(session, lambda: store.delete(key))
    await audit_step(
        session,
        subject,
        evaluation.id,
        "evidence_deleted",
        before={"evidence_id": evidence_id, "filename": evidence.filename, "sha256": evidence.sha256},
    )
