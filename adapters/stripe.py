"""Stripe behind the `PaymentProcessor` protocol: the only module that imports `stripe`.

Each practice has its own account, so each call uses a `StripeClient` built from that practice's
decrypted secret key; all of them share one async HTTP connection pool that lives as long as the
app. Stripe's answers become our own result types; nothing here logs a key, a secret or a body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import stripe
from stripe._base_address import BaseAddresses
from stripe.params import PaymentIntentCreateParams, PaymentIntentListParams, RefundCreateParams

from adapters.payment_processor import (
    ChargeDeclined,
    ChargePending,
    ChargeRequest,
    ChargeRequiresAction,
    ChargeResult,
    ChargeSucceeded,
    EventKind,
    InvalidSignature,
    MalformedEvent,
    ProcessorEvent,
    ProcessorOptions,
    ProcessorRefused,
    ProcessorUnavailable,
    RefundInfo,
    RefundResult,
    register,
    register_amount_rule,
)
from adapters.stripe_units import UnchargeableAmount, from_stripe, refusal, to_stripe
from models.enums import ProcessorType
from models.text import all_storable

# A look-up for a payment whose id we never learnt reads at most this many pages of 100.
_LOOK_UP_PAGES = 20

# Stripe's own default: events older than this are refused (a replayed capture).
SIGNATURE_TOLERANCE_SECONDS = 300

# Amounts cross this module in ISO 4217 minor units; Stripe's own units stay inside it.
register_amount_rule(ProcessorType.STRIPE)(refusal)

_PAYMENT_EVENTS = {
    "payment_intent.succeeded": EventKind.PAYMENT_SUCCEEDED,
    "payment_intent.payment_failed": EventKind.PAYMENT_FAILED,
    "payment_intent.canceled": EventKind.PAYMENT_CANCELED,
    "payment_intent.requires_action": EventKind.PAYMENT_REQUIRES_ACTION,
    "charge.refunded": EventKind.REFUNDED,
    "charge.refund.updated": EventKind.REFUND_UPDATED,
    "refund.updated": EventKind.REFUND_UPDATED,
    "refund.failed": EventKind.REFUND_UPDATED,
}


class _HTTPXClient(stripe.HTTPXClient):
    """Stripe's async httpx client, sending the encoded form as `content`: httpx deprecates
    raw bodies passed as `data`, and warns on every request."""

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> list[Any]:
        args: list[Any] = super()._get_request_args_kwargs(method, url, headers, post_data)
        kwargs = args[1]
        body = kwargs.pop("data", None)
        if body:
            kwargs["content"] = body
        return args


@register(ProcessorType.STRIPE)
class StripeBackend:
    """The connection pool shared by every practice's Stripe account."""

    def __init__(self, options: ProcessorOptions) -> None:
        self.options = options
        self._http = _HTTPXClient(timeout=options.timeout_seconds)

    def processor(self, credentials: Mapping[str, str]) -> StripeProcessor:
        base: BaseAddresses = {}
        if self.options.api_base:
            base["api"] = self.options.api_base
        client = stripe.StripeClient(
            credentials["secret_key"],
            http_client=self._http,
            base_addresses=base,
            max_network_retries=self.options.network_retries,
        )
        # A local test server (localstripe) refuses parameters it does not know (it never
        # redirects, and filters no list anyway): only Stripe itself is sent them.
        genuine = self.options.api_base is None
        return StripeProcessor(client, credentials["webhook_secret"], genuine)

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]


class StripeProcessor:
    """One practice's Stripe account."""

    def __init__(
        self, client: stripe.StripeClient, webhook_secret: str, genuine: bool = True
    ) -> None:
        self._client = client
        self._webhook_secret = webhook_secret
        self._genuine = genuine  # Stripe itself, not a local test server

    def __repr__(self) -> str:  # never show the keys
        return "StripeProcessor()"

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        params: PaymentIntentCreateParams = {
            "amount": _sent(request.amount, request.currency),
            "currency": request.currency.lower(),
            "payment_method": request.payment_method,
            "confirm": True,
            "metadata": {"description": request.description[:500], **request.metadata},
        }
        if self._genuine:
            # Confirmed now, never redirected: a card that needs 3-D Secure answers
            # requires_action, finished in the client's app with the client secret.
            params["automatic_payment_methods"] = {"enabled": True, "allow_redirects": "never"}
        options: stripe.RequestOptions = {"idempotency_key": request.idempotency_key}
        try:
            intent = await self._client.v1.payment_intents.create_async(params, options)
        except stripe.CardError as error:
            return _declined(error)
        except stripe.StripeError as error:
            raise _translate(error) from None
        return charge_result(intent.to_dict())

    async def payment_status(self, reference: str) -> ChargeResult:
        try:
            intent = await self._client.v1.payment_intents.retrieve_async(reference)
        except stripe.StripeError as error:
            raise _translate(error) from None
        return charge_result(intent.to_dict())

    async def find_payment(
        self, metadata: Mapping[str, str], created_since: datetime
    ) -> ChargeResult | None:
        params: PaymentIntentListParams = {"limit": 100}
        if self._genuine:
            params["created"] = {"gte": int(created_since.timestamp())}
        for _ in range(_LOOK_UP_PAGES):
            try:
                page = await self._client.v1.payment_intents.list_async(params)
            except stripe.StripeError as error:
                raise _translate(error) from None
            for intent in page.data:
                found = intent.to_dict()
                held = found.get("metadata") or {}
                if all(held.get(key) == value for key, value in metadata.items()):
                    return charge_result(found)
            if not page.has_more or not page.data:
                return None
            params["starting_after"] = page.data[-1].id
        raise ProcessorUnavailable("too many payments to look through; narrow the period")

    async def cancel(self, reference: str) -> ChargeResult:
        try:
            intent = await self._client.v1.payment_intents.cancel_async(reference)
        except stripe.InvalidRequestError:
            # Not cancelable any more (it succeeded or failed meanwhile): say where it is.
            return await self.payment_status(reference)
        except stripe.StripeError as error:
            raise _translate(error) from None
        return charge_result(intent.to_dict())

    async def refund(
        self, reference: str, amount: int, idempotency_key: str, metadata: Mapping[str, str]
    ) -> RefundResult:
        try:
            intent = await self._client.v1.payment_intents.retrieve_async(reference)
        except stripe.StripeError as error:
            raise _translate(error) from None
        params: RefundCreateParams = {
            "payment_intent": reference,
            "amount": _sent(amount, intent.currency),
            "metadata": dict(metadata),
        }
        options: stripe.RequestOptions = {"idempotency_key": idempotency_key}
        try:
            refund = await self._client.v1.refunds.create_async(params, options)
        except stripe.StripeError as error:
            raise _translate(error) from None
        if refund.status in ("failed", "canceled"):
            raise ProcessorRefused(f"the refund was {refund.status} at the processor")
        return RefundResult(reference=refund.id, amount=from_stripe(refund.amount, refund.currency))

    async def refunds(self, reference: str) -> tuple[RefundInfo, ...]:
        try:
            found = await self._client.v1.refunds.list_async(
                {"payment_intent": reference, "limit": 100}
            )
        except stripe.StripeError as error:
            raise _translate(error) from None
        return tuple(_refund_info(r.to_dict()) for r in found.data)

    def parse_event(self, payload: bytes, headers: Mapping[str, str]) -> ProcessorEvent:
        signature = headers.get("stripe-signature") or headers.get("Stripe-Signature")
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature, self._webhook_secret, SIGNATURE_TOLERANCE_SECONDS
            )
        except (stripe.SignatureVerificationError, ValueError):
            raise InvalidSignature("the Stripe-Signature does not match this body") from None
        try:
            event = json.loads(payload)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
            raise MalformedEvent("the body is not JSON") from None
        return parse_event(event)


def charge_result(intent: Mapping[str, Any]) -> ChargeResult:
    """Our view of a PaymentIntent (a dict, from the API or from an event)."""
    reference = str(intent["id"])
    status = intent.get("status")
    if status == "succeeded":
        return ChargeSucceeded(reference=reference, amount=_received(intent, "amount"))
    if status == "requires_action":
        return ChargeRequiresAction(reference=reference, client_secret=str(intent["client_secret"]))
    if status in ("processing", "requires_capture"):
        return ChargePending(reference=reference)
    # requires_payment_method (a failed attempt), canceled, or never confirmed.
    error = intent.get("last_payment_error") or {}
    if status == "canceled":
        reason = "the payment was canceled"
    else:
        reason = str(error.get("message") or "the card was declined")
    return ChargeDeclined(reason=reason, code=error.get("code"), reference=reference)


def parse_event(event: object) -> ProcessorEvent:
    """Reduce a (verified) Stripe event to what CareBill reacts to, or raise `MalformedEvent`
    for one that is not shaped like a Stripe event."""
    if not isinstance(event, dict) or not all_storable(event):
        raise MalformedEvent("an event is a JSON object of storable text")
    try:
        return _parse_event(event)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise MalformedEvent(f"the event is malformed ({type(exc).__name__})") from None


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return value


def _amount(value: object) -> int:
    """Minor units: a JSON integer (not a bool, a float or a string), within 64 bits."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValueError("expected an amount in minor units")
    return value


def _parse_event(event: Mapping[str, Any]) -> ProcessorEvent:
    event_id, event_type = _text(event["id"]), _text(event["type"])
    kind = _PAYMENT_EVENTS.get(event_type, EventKind.OTHER)
    obj = (event.get("data") or {}).get("object") or {}
    if kind is EventKind.OTHER or not isinstance(obj, Mapping):
        return ProcessorEvent(id=event_id, type=event_type, kind=EventKind.OTHER)
    if kind is EventKind.REFUNDED:
        listed = obj.get("refunds")
        refunds = None
        if isinstance(listed, Mapping) and not listed.get("has_more"):
            refunds = tuple(_refund_info(r) for r in listed.get("data") or ())
        intent = obj.get("payment_intent")
        return ProcessorEvent(
            id=event_id,
            type=event_type,
            kind=kind,
            payment_reference=_id_of(intent),
            amount=_received(obj, "amount_refunded"),
            refunds=refunds,
        )
    if kind is EventKind.REFUND_UPDATED:
        return ProcessorEvent(
            id=event_id,
            type=event_type,
            kind=kind,
            payment_reference=_id_of(obj.get("payment_intent")),
            amount=_received(obj, "amount"),
            refunds=(_refund_info(obj),),
        )
    result = charge_result(obj)
    metadata = {str(k): str(v) for k, v in (obj.get("metadata") or {}).items()}
    return ProcessorEvent(
        id=event_id,
        type=event_type,
        kind=kind,
        payment_reference=_text(obj["id"]),
        amount=_received(obj, "amount"),
        failure_reason=result.reason if isinstance(result, ChargeDeclined) else None,
        metadata=metadata,
    )


def _sent(amount: int, currency: str) -> int:
    """Our amount in Stripe's units; one Stripe cannot take is refused before any call."""
    try:
        return to_stripe(amount, currency)
    except UnchargeableAmount as error:
        raise ProcessorRefused(str(error)) from None


def _received(obj: Mapping[str, Any], field: str) -> int:
    """A Stripe object's amount field in ISO minor units of the object's own currency."""
    return from_stripe(_amount(obj.get(field)), str(obj.get("currency") or ""))


def _id_of(value: Any) -> str | None:
    """An expandable field: an id, or the expanded object carrying it."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if value else None


def _refund_info(refund: Mapping[str, Any]) -> RefundInfo:
    return RefundInfo(
        reference=_text(refund["id"]),
        amount=_received(refund, "amount"),
        succeeded=refund.get("status") not in ("failed", "canceled"),
        metadata={str(k): str(v) for k, v in (refund.get("metadata") or {}).items()},
    )


def _declined(error: stripe.CardError) -> ChargeDeclined:
    body = error.json_body if isinstance(error.json_body, dict) else {}
    details = body.get("error") or {}
    reference = _id_of(details.get("payment_intent"))
    reason = error.user_message or "the card was declined"
    return ChargeDeclined(reason=str(reason), code=error.code, reference=reference)


def _translate(error: stripe.StripeError) -> Exception:
    """Stripe's failures in our terms; the message never carries a key (Stripe masks them)."""
    if isinstance(
        error,
        stripe.APIConnectionError
        | stripe.APIError
        | stripe.RateLimitError
        | stripe.IdempotencyError,
    ) or (error.http_status is not None and error.http_status >= 500):
        return ProcessorUnavailable(f"Stripe did not answer ({type(error).__name__})")
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        return ProcessorRefused("Stripe refused the practice's credentials", credentials=True)
    return ProcessorRefused(error.user_message or "Stripe refused the request")
