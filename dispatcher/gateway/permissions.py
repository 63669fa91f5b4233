"""The permissions the reference lists for the send endpoints, and the gateway's own words
when a key lacks one: the sandbox answers with them, and the producer refuses with them
before queueing, so that the two cannot drift."""

from __future__ import annotations

from collections.abc import Collection


def send_refusal(permissions: Collection[str], *, combined: bool) -> str | None:
    """Why a key with ``permissions`` may not make this send (every send needs
    ``messages.send``; the combined send+contact endpoint also ``contacts.write``, even
    when it upserts nothing), or None when it may."""
    if "messages.send" not in permissions:
        read_only = all(p.endswith(".read") for p in permissions)
        named = "read" if read_only else ",".join(permissions)
        return f"API key scope '{named}' does not permit send actions"
    if combined and "contacts.write" not in permissions:
        return "API key needs 'contacts.write' for combined send+upsert"
    return None


def contact_refusal(permissions: Collection[str]) -> str | None:
    """Why a key with ``permissions`` may not write contacts (PATCH/POST /contacts)."""
    return None if "contacts.write" in permissions else "API key needs 'contacts.write'"
