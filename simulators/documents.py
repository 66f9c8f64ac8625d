"""Document management (quản lý văn bản): agencies exchange edXML packets through the hub.

One app stands for the document systems of several agencies, each a `Desk` with its own hub
key and push secret; nothing passes between desks except through the hub. An officer sends a
document (POST /api/{ma_co_quan}/van-ban-di): its edXML header (QCVN 102:2016, subject
edxml.envelope) is published to `edxml.documents`. The hub pushes it to the subscribing desks
(POST /webhooks/{ma_co_quan}/van-ban); each one it is addressed to enters it in its incoming
book (số đến) and answers with status packets (subject edxml.status) on `edxml.status`: 01 đã
đến and 03 đã tiếp nhận at once, later what its officer reports (04 phân công, 05 đang xử lý,
06 hoàn thành, or 02 từ chối with the reason). The hub pushes the statuses back (POST
/webhooks/{ma_co_quan}/trang-thai) and the sending desk keeps them per document and recipient.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators.formats import format_date, format_timestamp, now_in_vietnam, parse_date
from simulators.publisher import Publication, Publisher
from simulators.web import (
    HEALTH_ROUTE,
    Problem,
    Validation,
    is_int_in,
    json_object,
    non_empty_string,
    problem_handler,
)
from simulators.webhooks import Delivery, WebhookLog, WebhookReceiver

DOCUMENTS_TOPIC = "edxml.documents"
STATUS_TOPIC = "edxml.status"
ARRIVED, REJECTED, ACCEPTED = "01", "02", "03"
# What a receiving agency may report about a document (13, a recall request, is the sender's).
RECEIVER_CODES = ("02", "03", "04", "05", "06", "15", "16")
NEEDS_REASON = ("02", "16")
AUTOMATIC = (ARRIVED, ACCEPTED)  # a valid packet is entered in the incoming book at once
PLACE = "Lai Châu"
_AGENCY_CODE = re.compile(r"[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}")

# The demo's push secrets (DEMO_QLVB_UBND_WEBHOOK_SECRET, DEMO_QLVB_STP_WEBHOOK_SECRET).
DEMO_UBND_SECRET = "whsec_bGdzcC1kZW1vLXFsdmItdWJuZC1ob29r"
DEMO_STP_SECRET = "whsec_bGdzcC1kZW1vLXFsdmItc3RwLS1ob29r"


@dataclass(frozen=True, slots=True)
class Desk:
    """One agency's document system: who it is, how it signs, how the hub knows it."""

    code: str  # mã định danh cơ quan
    name: str
    notation: str  # ký hiệu văn bản đi, e.g. UBND-VX in 125/UBND-VX
    signer: Mapping[str, str]  # SignerInfo: Competence, Position, FullName
    webhook_secret: str  # verifies the hub's pushes to this desk
    hub_api_key: str | None = None  # the desk's consumer key, to publish


DEMO_DESKS = (
    Desk(
        code="000.00.12.H12",
        name="Văn phòng UBND tỉnh Lai Châu",
        notation="UBND-VX",
        signer={
            "Competence": "KT. CHỦ TỊCH",
            "Position": "Phó Chủ tịch",
            "FullName": "Nguyễn Văn An",
        },
        webhook_secret=DEMO_UBND_SECRET,
    ),
    Desk(
        code="000.00.15.H12",
        name="Sở Tư pháp tỉnh Lai Châu",
        notation="STP-HCTP",
        signer={
            "Competence": "KT. GIÁM ĐỐC",
            "Position": "Phó Giám đốc",
            "FullName": "Lò Thị Hương",
        },
        webhook_secret=DEMO_STP_SECRET,
    ),
)


def document_id(organ_id: str, promulgated: str, code: str) -> str:
    """Mã định danh văn bản: `{agency},{yyyyMMdd},{number/notation}`."""
    return f"{organ_id},{promulgated},{code}"


@dataclass
class _Office:
    """The state of one desk: its outgoing and incoming books."""

    desk: Desk
    publisher: Publisher | None
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)  # DocumentId ->
    published: dict[str, Publication] = field(default_factory=dict)  # DocumentId ->
    received: dict[int, dict[str, Any]] = field(default_factory=dict)  # số đến ->
    received_ids: dict[str, int] = field(default_factory=dict)  # DocumentId -> số đến
    next_number: int = 1  # số văn bản đi, per desk

    def publish(self, topic: str, value: dict[str, Any]) -> Publication | None:
        return self.publisher.publish(topic, value) if self.publisher is not None else None

    def organ(self) -> dict[str, str]:
        return {"OrganId": self.desk.code, "OrganName": self.desk.name}


def _check_outgoing(body: dict[str, Any]) -> None:
    check = Validation()
    recipients = body.get("To")
    if not isinstance(recipients, list) or not recipients:
        check.add("/To", "required: the receiving agencies, [{OrganId, OrganName}, ...]")
    else:
        for index, organ in enumerate(recipients):
            if not isinstance(organ, dict):
                check.add(f"/To/{index}", "must be an object with OrganId and OrganName")
                continue
            if not _AGENCY_CODE.fullmatch(str(organ.get("OrganId", ""))):
                check.add(f"/To/{index}/OrganId", "must be an agency code like 000.00.15.H12")
            if not non_empty_string(organ.get("OrganName")):
                check.add(f"/To/{index}/OrganName", "required: the agency's name")
    if not non_empty_string(body.get("Subject"), max_length=1000):
        check.add("/Subject", "required: trích yếu, at most 1000 characters")
    kind = body.get("DocumentType")
    if kind is not None and not (
        isinstance(kind, dict)
        and is_int_in(kind.get("Type"), 1, 999)
        and non_empty_string(kind.get("TypeName"))
    ):
        check.add("/DocumentType", "must be {Type: number, TypeName: text}")
    if "DueDate" in body and parse_date(body["DueDate"]) is None:
        check.add("/DueDate", "must be a date as yyyyMMdd")
    if "Content" in body and not isinstance(body["Content"], str):
        check.add("/Content", "must be a string")
    check.raise_if_any()


def _status_packet(
    office: _Office, document: Mapping[str, Any], code: str, **extra: Any
) -> dict[str, Any]:
    """An edXML status packet about `document` (an envelope) from this desk."""
    number = document["Code"]
    written = f"{number['CodeNumber']}/{number['CodeNotation']}"
    promulgated = document["PromulgationInfo"]["PromulgationDate"]
    sender = document["From"]["OrganId"]
    packet: dict[str, Any] = {
        "ResponseFor": {
            "OrganId": sender,
            "Code": written,
            "PromulgationDate": promulgated,
            "DocumentId": document.get("DocumentId") or document_id(sender, promulgated, written),
        },
        "From": office.organ(),
        "StatusCode": code,
        "Timestamp": format_timestamp(now_in_vietnam()),
    }
    packet.update({k: v for k, v in extra.items() if v is not None})
    return packet


def _usable_envelope(value: Any) -> bool:
    """Enough of an edXML header to register it and answer about it."""
    try:
        return (
            isinstance(value["From"]["OrganId"], str)
            and isinstance(value["Code"]["CodeNumber"], str)
            and isinstance(value["Code"]["CodeNotation"], str)
            and isinstance(value["PromulgationInfo"]["PromulgationDate"], str)
            and all(isinstance(organ["OrganId"], str) for organ in value["To"])
        )
    except (KeyError, TypeError):
        return False


def create_app(
    *,
    desks: Sequence[Desk] = DEMO_DESKS,
    hub_url: str | None = None,
    documents_topic: str = DOCUMENTS_TOPIC,
    status_topic: str = STATUS_TOPIC,
    automatic_statuses: Sequence[str] = AUTOMATIC,
    publish_retry_max: float = 5.0,
) -> Starlette:
    """Document systems of `desks`; with `hub_url` set each publishes with its own key."""
    log = WebhookLog()
    offices: dict[str, _Office] = {}
    documents_in: dict[str, WebhookReceiver] = {}
    statuses_in: dict[str, WebhookReceiver] = {}
    for desk in desks:
        publisher = (
            Publisher(hub_url=hub_url, api_key=desk.hub_api_key, retry_max=publish_retry_max)
            if hub_url
            else None
        )
        offices[desk.code] = _Office(desk=desk, publisher=publisher)
        secrets = [desk.webhook_secret]
        documents_in[desk.code] = WebhookReceiver(
            secrets, endpoint=f"/webhooks/{desk.code}/van-ban", log=log
        )
        statuses_in[desk.code] = WebhookReceiver(
            secrets, endpoint=f"/webhooks/{desk.code}/trang-thai", log=log
        )

    def office_of(request: Request) -> _Office:
        code = request.path_params["ma_co_quan"]
        if code not in offices:
            raise Problem(404, "Not found", f"no document system here for agency {code}")
        return offices[code]

    def sent_view(office: _Office, doc_id: str) -> dict[str, Any]:
        publication = office.published.get(doc_id)
        return {
            **office.sent[doc_id],
            "publication": asdict(publication) if publication is not None else None,
        }

    async def send(request: Request) -> Response:
        """Send a document (gửi văn bản đi): its edXML header goes to edxml.documents."""
        office = office_of(request)
        body = await json_object(request)
        _check_outgoing(body)
        today = format_date(now_in_vietnam().date())
        number, notation = str(office.next_number), office.desk.notation
        office.next_number += 1
        doc_id = document_id(office.desk.code, today, f"{number}/{notation}")
        envelope: dict[str, Any] = {
            "From": office.organ(),
            "To": [{"OrganId": o["OrganId"], "OrganName": o["OrganName"]} for o in body["To"]],
            "Code": {"CodeNumber": number, "CodeNotation": notation},
            "PromulgationInfo": {"Place": PLACE, "PromulgationDate": today},
            "DocumentType": body.get("DocumentType") or {"Type": 1, "TypeName": "Công văn"},
            "Subject": body["Subject"].strip(),
            "SignerInfo": dict(office.desk.signer),
            "SteeringType": 0,
            "DocumentId": doc_id,
        }
        envelope.update({k: body[k] for k in ("Content", "DueDate") if k in body})
        office.sent[doc_id] = {"DocumentId": doc_id, "edXML": envelope, "TrangThai": {}}
        publication = office.publish(documents_topic, envelope)
        if publication is not None:
            office.published[doc_id] = publication
        return JSONResponse(sent_view(office, doc_id), status_code=201)

    async def list_sent(request: Request) -> Response:
        """Documents sent (văn bản đi), with the statuses each recipient reported."""
        office = office_of(request)
        items = [sent_view(office, doc_id) for doc_id in office.sent]
        return JSONResponse({"items": items, "total": len(items)})

    async def list_received(request: Request) -> Response:
        """Documents received (văn bản đến), by incoming number (số đến)."""
        items = list(office_of(request).received.values())
        return JSONResponse({"items": items, "total": len(items)})

    def report(office: _Office, entry: dict[str, Any], code: str, **extra: Any) -> dict[str, Any]:
        packet = _status_packet(office, entry["edXML"], code, **extra)
        office.publish(status_topic, packet)
        entry["TrangThaiDaGui"].append({"StatusCode": code, "Timestamp": packet["Timestamp"]})
        return packet

    async def report_status(request: Request) -> Response:
        """Report what became of a received document (gửi trạng thái): 02-06, 15, 16."""
        office = office_of(request)
        number = request.path_params["so_den"]
        if number not in office.received:
            raise Problem(404, "Not found", f"no incoming document number {number}")
        body = await json_object(request)
        check = Validation()
        code = body.get("StatusCode")
        if code not in RECEIVER_CODES:
            check.add("/StatusCode", f"must be one of {', '.join(RECEIVER_CODES)}")
        reason = body.get("Description")
        if reason is not None and not isinstance(reason, str):
            check.add("/Description", "must be a string")
        elif code in NEEDS_REASON and not non_empty_string(reason, max_length=2000):
            check.add("/Description", "required: why the document is refused")
        staff = body.get("StaffInfo")
        if staff is not None and not isinstance(staff, dict):
            check.add("/StaffInfo", "must be {Department, Staff, Mobile, Email}")
        check.raise_if_any()
        packet = report(
            office, office.received[number], str(code), Description=reason, StaffInfo=staff
        )
        return JSONResponse({"SoDen": number, "TrangThai": packet}, status_code=202)

    def take_document(office: _Office, delivery: Delivery) -> dict[str, Any]:
        envelope = delivery.value
        if not _usable_envelope(envelope):
            raise Problem(422, "Validation failed", "not an edXML header this system can register")
        if office.desk.code not in {organ["OrganId"] for organ in envelope["To"]}:
            return {"ignored": f"not addressed to {office.desk.code}"}
        written = f"{envelope['Code']['CodeNumber']}/{envelope['Code']['CodeNotation']}"
        promulgated = envelope["PromulgationInfo"]["PromulgationDate"]
        doc_id = envelope.get("DocumentId") or document_id(
            envelope["From"]["OrganId"], promulgated, written
        )
        if doc_id in office.received_ids:
            return {"SoDen": office.received_ids[doc_id], "already_received": True}
        number = len(office.received) + 1
        entry: dict[str, Any] = {
            "SoDen": number,
            "DocumentId": doc_id,
            "edXML": envelope,
            "received_at": format_timestamp(now_in_vietnam()),
            "webhook_id": delivery.webhook_id,
            "TrangThaiDaGui": [],
        }
        office.received[number] = entry
        office.received_ids[doc_id] = number
        for code in automatic_statuses:
            report(office, entry, code)
        return {"SoDen": number, "StatusCodes": list(automatic_statuses)}

    def take_status(office: _Office, delivery: Delivery) -> dict[str, Any]:
        packet = delivery.value
        try:
            about, reporter = packet["ResponseFor"], packet["From"]["OrganId"]
            code, sender = packet["StatusCode"], about["OrganId"]
        except (KeyError, TypeError) as exc:
            raise Problem(422, "Validation failed", "not an edXML status packet") from exc
        if not isinstance(about, dict):
            raise Problem(422, "Validation failed", "ResponseFor must name the document")
        if sender != office.desk.code:
            return {"ignored": f"about a document of {sender}"}
        doc_id = about.get("DocumentId") or document_id(
            sender, str(about.get("PromulgationDate")), str(about.get("Code"))
        )
        if doc_id not in office.sent:
            return {"ignored": f"no document {doc_id} was sent from here"}
        office.sent[doc_id]["TrangThai"].setdefault(reporter, []).append(
            {
                "StatusCode": code,
                "Description": packet.get("Description"),
                "Timestamp": packet.get("Timestamp"),
                "webhook_id": delivery.webhook_id,
                "received_at": format_timestamp(now_in_vietnam()),
            }
        )
        return {"DocumentId": doc_id, "StatusCode": code}

    async def document_webhook(request: Request) -> Response:
        """Receive a document pushed by the hub (topic edxml.documents)."""
        office = office_of(request)
        return await documents_in[office.desk.code].receive(
            request, lambda delivery: take_document(office, delivery)
        )

    async def status_webhook(request: Request) -> Response:
        """Receive a status packet pushed by the hub (topic edxml.status)."""
        office = office_of(request)
        return await statuses_in[office.desk.code].receive(
            request, lambda delivery: take_status(office, delivery)
        )

    async def list_published(request: Request) -> Response:
        """What every desk published: state, attempts, the hub's message id."""
        return JSONResponse(
            [
                {"desk": code, **asdict(p)}
                for code, office in offices.items()
                if office.publisher is not None
                for p in office.publisher.publications
            ]
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for office in offices.values():
                if office.publisher is not None:
                    await stack.enter_async_context(office.publisher.running())
            yield

    routes = [
        Route("/api/{ma_co_quan}/van-ban-di", send, methods=["POST"]),
        Route("/api/{ma_co_quan}/van-ban-di", list_sent, methods=["GET"]),
        Route("/api/{ma_co_quan}/van-ban-den", list_received, methods=["GET"]),
        Route(
            "/api/{ma_co_quan}/van-ban-den/{so_den:int}/trang-thai", report_status, methods=["POST"]
        ),
        Route("/webhooks/{ma_co_quan}/van-ban", document_webhook, methods=["POST"]),
        Route("/webhooks/{ma_co_quan}/trang-thai", status_webhook, methods=["POST"]),
        Route("/_sim/published", list_published, methods=["GET"]),
        HEALTH_ROUTE,
        *log.routes(),
    ]
    return Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={Problem: problem_handler}
    )
