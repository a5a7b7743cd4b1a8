"""What CareBill asks of a card processor, in our own types, and the registry of processors.

A processor module (today `adapters/stripe.py`) registers a backend factory for its
`ProcessorType` on import; `PaymentProcessors` imports `adapters.<type>` the first time a type
is used. Adding a processor is therefore one new module (plus its `ProcessorType` member) and
nothing else changes: resolvers only ever see the `PaymentProcessor` protocol below.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from models.enums import ProcessorType


class ProcessorUnavailable(Exception):
    """The processor did not answer (timeout, connection refused, 5xx): the outcome of the
    request is unknown, and repeating it with the same idempotency key is safe."""


class ProcessorRefused(Exception):
    """The processor answered and refused the request (not a card decline); nothing happened.
    `credentials` is set when it refused the practice's keys themselves."""

    def __init__(self, message: str, *, credentials: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.credentials = credentials


class InvalidSignature(Exception):
    """A webhook whose signature is missing, wrong or too old: it must change nothing."""


class MalformedEvent(Exception):
    """A validly signed webhook that can never be read as an event: sending it again cannot
    help (400, not 5xx, so the processor stops retrying)."""


@dataclass(frozen=True, slots=True)
class ChargeSucceeded:
    reference: str  # the processor's id of the payment (a Stripe PaymentIntent id)
    amount: int


@dataclass(frozen=True, slots=True)
class ChargeRequiresAction:
    """The customer must authenticate (3-D Secure) in their app with `client_secret`."""

    reference: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ChargeDeclined:
    reason: str
    code: str | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class ChargePending:
    """Accepted but not settled yet (e.g. still processing): a webhook will tell."""

    reference: str


ChargeResult = ChargeSucceeded | ChargeRequiresAction | ChargeDeclined | ChargePending


@dataclass(frozen=True, slots=True)
class RefundResult:
    reference: str  # the processor's refund id
    amount: int


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    amount: int
    currency: str  # ISO 4217, any case
    payment_method: str  # a token made by the client's app (never a card number)
    idempotency_key: str
    description: str
    metadata: Mapping[str, str]


class EventKind(enum.Enum):
    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_CANCELED = "payment_canceled"  # abandoned (by us, for another card, or by a person)
    PAYMENT_REQUIRES_ACTION = "payment_requires_action"  # waiting for the customer (3-D Secure)
    REFUNDED = "refunded"
    REFUND_UPDATED = "refund updated"  # one refund changed (e.g. failed after it was accepted)
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class RefundInfo:
    reference: str
    amount: int
    succeeded: bool  # settled or on its way (not failed or canceled)
    metadata: Mapping[str, str] = field(default_factory=dict)  # what we sent with it


@dataclass(frozen=True, slots=True)
class ProcessorEvent:
    """A verified processor event, reduced to what CareBill reacts to."""

    id: str
    type: str  # the processor's own name, e.g. payment_intent.succeeded
    kind: EventKind
    payment_reference: str | None = None
    amount: int | None = None
    failure_reason: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    # For REFUNDED: the payment's refunds when the event carries them, else None (ask).
    # For REFUND_UPDATED: the one refund the event is about.
    refunds: tuple[RefundInfo, ...] | None = None


class PaymentProcessor(Protocol):
    """One practice's account at a processor. Every call may raise `ProcessorUnavailable`."""

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Create and confirm a payment; repeating it with the same key returns the first."""
        ...

    async def payment_status(self, reference: str) -> ChargeResult:
        """Where a payment made earlier stands now."""
        ...

    async def find_payment(
        self, metadata: Mapping[str, str], created_since: datetime
    ) -> ChargeResult | None:
        """The payment carrying all of `metadata`, made since `created_since`, if the
        processor holds one (a look-up for a payment whose id we never learnt)."""
        ...

    async def cancel(self, reference: str) -> ChargeResult:
        """Abandon a payment still waiting for the customer; returns where it ended."""
        ...

    async def refund(
        self, reference: str, amount: int, idempotency_key: str, metadata: Mapping[str, str]
    ) -> RefundResult:
        """Give back `amount` of a payment; raises `ProcessorRefused` when refused."""
        ...

    async def refunds(self, reference: str) -> tuple[RefundInfo, ...]:
        """Every refund of a payment, as the processor knows them."""
        ...

    def parse_event(self, payload: bytes, headers: Mapping[str, str]) -> ProcessorEvent:
        """Verify a webhook's signature (in `headers`) on the raw body; raises
        `InvalidSignature`."""
        ...


@dataclass(frozen=True)
class ProcessorOptions:
    """Deployment-wide options for every processor backend."""

    api_base: str | None = None  # another server than the processor's own (a test server)
    timeout_seconds: float = 20.0
    # Our callers retry with the same idempotency key (the client's next request); one call is
    # one request, so how long it may take is known (the payment attempt's lease).
    network_retries: int = 0

    @property
    def longest_call_seconds(self) -> float:
        """How long one call may take at most, retries included (a lease must outlast it)."""
        return (self.network_retries + 1) * (self.timeout_seconds + 5.0)


class ProcessorBackend(Protocol):
    """A processor type's shared resources (connection pool), as long-lived as the app."""

    def processor(self, credentials: Mapping[str, str]) -> PaymentProcessor: ...

    async def aclose(self) -> None: ...


BackendFactory = Callable[[ProcessorOptions], ProcessorBackend]
# Why a processor cannot charge `amount` (ISO 4217 minor units) of `currency`, or None.
AmountRule = Callable[[int, str], str | None]

_FACTORIES: dict[ProcessorType, BackendFactory] = {}
_AMOUNT_RULES: dict[ProcessorType, AmountRule] = {}


def register(processor_type: ProcessorType) -> Callable[[BackendFactory], BackendFactory]:
    """Class or function decorator a processor module uses to make itself known."""

    def add(factory: BackendFactory) -> BackendFactory:
        _FACTORIES[processor_type] = factory
        return factory

    return add


def register_amount_rule(processor_type: ProcessorType) -> Callable[[AmountRule], AmountRule]:
    """Function decorator: the processor's own rules on the amounts it can charge."""

    def add(rule: AmountRule) -> AmountRule:
        _AMOUNT_RULES[processor_type] = rule
        return rule

    return add


def _load(processor_type: ProcessorType) -> None:
    if processor_type not in _FACTORIES:
        # By convention the module is named after the type: ProcessorType.STRIPE -> adapters.stripe
        importlib.import_module(f"adapters.{processor_type.value.lower()}")


def backend_factory(processor_type: ProcessorType) -> BackendFactory:
    _load(processor_type)
    return _FACTORIES[processor_type]


def charge_refusal(processor_type: ProcessorType, amount: int, currency: str) -> str | None:
    """Why `processor_type` cannot charge `amount` minor units of `currency` (its units, its
    ceiling), or None when it can; asked before a payment is offered or attempted."""
    _load(processor_type)
    rule = _AMOUNT_RULES.get(processor_type)
    return None if rule is None else rule(amount, currency)


class PaymentProcessors:
    """Every processor type's backend, created on first use and closed with the app."""

    def __init__(self, options: ProcessorOptions) -> None:
        self.options = options
        self._backends: dict[ProcessorType, ProcessorBackend] = {}

    def processor(
        self, processor_type: ProcessorType, credentials: Mapping[str, str]
    ) -> PaymentProcessor:
        """The processor of one practice, built from its decrypted credentials."""
        backend = self._backends.get(processor_type)
        if backend is None:
            backend = self._backends[processor_type] = backend_factory(processor_type)(self.options)
        return backend.processor(credentials)

    async def aclose(self) -> None:
        backends, self._backends = list(self._backends.values()), {}
        for backend in backends:
            await backend.aclose()
