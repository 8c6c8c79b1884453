"""Typed dependencies for what the app holds (``app.main.create_app`` / ``install_state`` set it on
``app.state``): endpoints ask for these and never read ``request.app.state`` themselves."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.replicas import ReplicaRouter


async def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def app_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    """For work that outlives the request's own session (a streamed export's reads)."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return sessionmaker


async def app_replicas(request: Request) -> ReplicaRouter:
    """The read replicas and their health (``app/core/replicas.py``); disabled without any."""
    replicas: ReplicaRouter = request.app.state.replicas
    return replicas


AppSettings = Annotated[Settings, Depends(app_settings)]
AppSessionmaker = Annotated[async_sessionmaker[AsyncSession], Depends(app_sessionmaker)]
AppReplicas = Annotated[ReplicaRouter, Depends(app_replicas)]
