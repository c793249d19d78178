"""Router being written (see tidings.api for what it owns)."""

from fastapi import APIRouter

router = APIRouter()
