"""One method per send type, in Python names, over ``Dispatcher.send``.

Each builds the gateway's own body from its arguments (unset ones left out) and queues it;
options (``lane``, ``idempotency_key``, ``not_before``, ``expires_at``, ...) pass through.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal


class TypedSends(ABC):
    """Mixed into Dispatcher, which provides ``send``."""

    @abstractmethod
    def send(self, channel: str, message_type: str, body: Mapping[str, Any], **options: Any) -> str:
        """Queue one job in the gateway's own body shape; returns the job id."""

    # --- typed sends: Cloud API -------------------------------------------------------------

    def send_text(
        self,
        to: str,
        from_phone_no: str,
        body: str,
        *,
        preview_url: bool | None = None,
        **options: Any,
    ) -> str:
        """Queue ``POST /whatsapp-api/messages/text``."""
        return self.send(
            "cloud", "text", _body(to, from_phone_no, body=body, previewUrl=preview_url), **options
        )

    def send_template(
        self,
        to: str,
        from_phone_no: str,
        name: str,
        language: str,
        components: Sequence[Mapping[str, Any]] | None = None,
        *,
        reply_to_wa_message_id: str | None = None,
        **options: Any,
    ) -> str:
        """Queue ``POST /whatsapp-api/messages/template``."""
        return self.send(
            "cloud",
            "template",
            _body(
                to,
                from_phone_no,
                name=name,
                language=language,
                components=components,
                replyToWaMessageId=reply_to_wa_message_id,
            ),
            **options,
        )

    def send_buttons(
        self,
        to: str,
        from_phone_no: str,
        body_text: str,
        buttons: Sequence[Mapping[str, str]],
        *,
        header_text: str | None = None,
        footer_text: str | None = None,
        **options: Any,
    ) -> str:
        """Queue ``POST /whatsapp-api/messages/buttons``."""
        return self.send(
            "cloud",
            "buttons",
            _body(
                to,
                from_phone_no,
                bodyText=body_text,
                buttons=buttons,
                headerText=header_text,
                footerText=footer_text,
            ),
            **options,
        )

    def send_list(
        self,
        to: str,
        from_phone_no: str,
        body_text: str,
        button_text: str,
        sections: Sequence[Mapping[str, Any]],
        *,
        header_text: str | None = None,
        footer_text: str | None = None,
        **options: Any,
    ) -> str:
        """Queue ``POST /whatsapp-api/messages/list``."""
        return self.send(
            "cloud",
            "list",
            _body(
                to,
                from_phone_no,
                bodyText=body_text,
                buttonText=button_text,
                sections=sections,
                headerText=header_text,
                footerText=footer_text,
            ),
            **options,
        )

    def send_cta(
        self,
        to: str,
        from_phone_no: str,
        body_text: str,
        button_text: str,
        url: str,
        *,
        header_text: str | None = None,
        footer_text: str | None = None,
        **options: Any,
    ) -> str:
        """Queue ``POST /whatsapp-api/messages/cta``."""
        return self.send(
            "cloud",
            "cta",
            _body(
                to,
                from_phone_no,
                bodyText=body_text,
                buttonText=button_text,
                url=url,
                headerText=header_text,
                footerText=footer_text,
            ),
            **options,
        )

    def send_flow(
        self,
        to: str,
        from_phone_no: str,
        body_text: str,
        flow_id: str,
        flow_cta: str,
        *,
        flow_token: str | None = None,
        flow_action: str | None = None,
        screen: str | None = None,
        data: Mapping[str, Any] | None = None,
        mode: str | None = None,
        header_text: str | None = None,
        footer_text: str | None = None,
        **options: Any,
    ) -> str:
        """Queue ``POST /whatsapp-api/messages/flow``."""
        return self.send(
            "cloud",
            "flow",
            _body(
                to,
                from_phone_no,
                bodyText=body_text,
                flowId=flow_id,
                flowCta=flow_cta,
                flowToken=flow_token,
                flowAction=flow_action,
                screen=screen,
                data=data,
                mode=mode,
                headerText=header_text,
                footerText=footer_text,
            ),
            **options,
        )

    def send_media(
        self,
        kind: Literal["image", "video", "audio", "sticker", "document"],
        to: str,
        from_phone_no: str,
        *,
        link: str | None = None,
        media_id: str | None = None,
        caption: str | None = None,
        filename: str | None = None,
        **options: Any,
    ) -> str:
        """Queue ``POST /whatsapp-api/messages/{image,video,audio,sticker,document}``."""
        return self.send(
            "cloud",
            kind,
            _body(
                to, from_phone_no, link=link, mediaId=media_id, caption=caption, filename=filename
            ),
            **options,
        )

    def send_image(self, to: str, from_phone_no: str, **fields: Any) -> str:
        return self.send_media("image", to, from_phone_no, **fields)

    def send_video(self, to: str, from_phone_no: str, **fields: Any) -> str:
        return self.send_media("video", to, from_phone_no, **fields)

    def send_audio(self, to: str, from_phone_no: str, **fields: Any) -> str:
        return self.send_media("audio", to, from_phone_no, **fields)

    def send_sticker(self, to: str, from_phone_no: str, **fields: Any) -> str:
        return self.send_media("sticker", to, from_phone_no, **fields)

    def send_document(self, to: str, from_phone_no: str, **fields: Any) -> str:
        return self.send_media("document", to, from_phone_no, **fields)

    def send_and_upsert(
        self,
        to: str,
        from_phone_no: str,
        type: str,
        payload: Mapping[str, Any],
        *,
        contact: Mapping[str, Any] | None = None,
        country_code: str | None = None,
        **options: Any,
    ) -> str:
        """Queue ``POST /whatsapp-api/messages/send``: upsert the contact and send."""
        return self.send(
            "cloud",
            "send",
            _body(
                to,
                from_phone_no,
                type=type,
                payload=payload,
                contact=contact,
                countryCode=country_code,
            ),
            **options,
        )

    # --- typed sends: QR sessions -----------------------------------------------------------

    def send_qr(
        self,
        kind: Literal["text", "image", "video", "audio", "document", "location"],
        to: str,
        *,
        from_phone_no: str | None = None,
        session_id: str | None = None,
        lane: str = "transactional",
        idempotency_key: str | None = None,
        not_before: datetime | None = None,
        expires_at: datetime | None = None,
        campaign_id: str | None = None,
        **fields: Any,
    ) -> str:
        """Queue ``POST /whatsapp-qr/messages/{kind}``; fields in the gateway's names."""
        body = _body(to, from_phone_no, sessionId=session_id, **fields)
        return self.send(
            "qr",
            kind,
            body,
            lane=lane,
            idempotency_key=idempotency_key,
            not_before=not_before,
            expires_at=expires_at,
            campaign_id=campaign_id,
        )


def _body(to: str, from_phone_no: str | None, **fields: Any) -> dict[str, Any]:
    body = {"to": to, **{k: v for k, v in fields.items() if v is not None}}
    if from_phone_no is not None:
        body["fromPhoneNo"] = from_phone_no
    return body
