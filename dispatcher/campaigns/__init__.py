"""Scheduled broadcast campaigns: one-off or cron, fanned out with back-pressure."""

from dispatcher.campaigns.audience import Refused, rows
from dispatcher.campaigns.model import CampaignSpec, Message, Schedule, SendWindow, render
from dispatcher.campaigns.store import Campaigns, Created

__all__ = [
    "CampaignSpec",
    "Campaigns",
    "Created",
    "Message",
    "Refused",
    "Schedule",
    "SendWindow",
    "render",
    "rows",
]
