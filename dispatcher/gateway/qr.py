"""Request bodies of the WhatsApp QR session endpoints (``/whatsapp-qr/messages/*``).

A QR "number" is a linked-device session: it is chosen by ``fromPhoneNo`` or by
``sessionId``. There is no 24-hour window and media go by ``link`` only.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Self

from pydantic import Field, model_validator

from dispatcher.gateway.fields import E164, Caption, GatewayModel, HttpsUrl, SessionId

QrText = Annotated[str, Field(min_length=1, max_length=65536)]


class QrSend(GatewayModel):
    """Base of every QR send: the recipient and the session, by number or by id."""

    message_type: ClassVar[str]  # the path's last part

    to: E164
    from_phone_no: E164 | None = None
    session_id: SessionId | None = None

    @property
    def endpoint(self) -> str:
        return f"/whatsapp-qr/messages/{self.message_type}"

    @model_validator(mode="after")
    def _session_chosen(self) -> Self:
        if self.from_phone_no is None and self.session_id is None:
            raise ValueError("fromPhoneNo is required unless sessionId is given")
        return self


class QrTextMessage(QrSend):
    """``POST /whatsapp-qr/messages/text`` (QR · Send Text)."""

    message_type = "text"
    body: QrText


class QrMedia(QrSend):
    """A QR media send: the file by its ``https`` link."""

    link: HttpsUrl


class QrCaptionedMedia(QrMedia):
    caption: Caption | None = None


class QrImageMessage(QrCaptionedMedia):
    """``POST /whatsapp-qr/messages/image`` (QR · Send Image)."""

    message_type = "image"


class QrVideoMessage(QrCaptionedMedia):
    """``POST /whatsapp-qr/messages/video`` (variant of QR · Send Text)."""

    message_type = "video"


class QrAudioMessage(QrMedia):
    """``POST /whatsapp-qr/messages/audio`` (variant of QR · Send Text)."""

    message_type = "audio"


class QrDocumentMessage(QrMedia):
    """``POST /whatsapp-qr/messages/document`` (variant of QR · Send Text)."""

    message_type = "document"
    filename: str | None = Field(default=None, min_length=1, max_length=240)
    caption: Caption | None = None


class QrLocationMessage(QrSend):
    """``POST /whatsapp-qr/messages/location`` (variant of QR · Send Text)."""

    message_type = "location"
    latitude: float = Field(ge=-90, le=90, allow_inf_nan=False)
    longitude: float = Field(ge=-180, le=180, allow_inf_nan=False)
    name: str | None = Field(default=None, min_length=1, max_length=256)
    address: str | None = Field(default=None, min_length=1, max_length=1024)
