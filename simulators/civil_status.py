"""The civil-status system (hộ tịch): birth registrations over REST, OAuth2 client credentials.

With a hub configured, every new registration is also announced on the hub's
`civil.birth-registered` topic (through an outbox, see simulators.publisher), for the population
database and the dossier system to pick up.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators import citizens
from simulators.communes import COMMUNES
from simulators.formats import format_date, now_in_vietnam, parse_date
from simulators.oauth import TokenIssuer
from simulators.personal_id import FEMALE, MALE, is_well_formed, make_personal_id
from simulators.publisher import Publisher
from simulators.web import (
    HEALTH_ROUTE,
    Problem,
    RequestLog,
    Validation,
    json_object,
    non_empty_string,
    personal_id_query,
    problem_handler,
)

PROVINCE = "012"
BIRTH_TOPIC = "civil.birth-registered"
SEEDED_BIRTHS = 36
_FIRST_NEW_SERIAL = 900_000  # new numbers are drawn above the synthetic population's serials


@dataclass(frozen=True, slots=True)
class BirthRegistration:
    """One entry of the birth register (sổ đăng ký khai sinh)."""

    so_dang_ky: str
    so_dinh_danh: str
    ho_va_ten: str
    gioi_tinh: int
    ngay_sinh: str  # yyyyMMdd
    noi_sinh_ma_xa: str
    noi_sinh_ten_xa: str
    me_so_dinh_danh: str | None
    cha_so_dinh_danh: str | None
    ngay_dang_ky: str  # yyyyMMdd


class _Register:
    def __init__(self) -> None:
        self.by_number: dict[str, BirthRegistration] = {}
        self.counter = 0
        self.taken = {c.so_dinh_danh for c in citizens.citizens()}
        self.next_serial = _FIRST_NEW_SERIAL

    def add(self, **fields: Any) -> BirthRegistration:
        self.counter += 1
        year = fields["ngay_dang_ky"][:4]
        code = f"KS-{year}-{fields['noi_sinh_ma_xa']}-{self.counter:06d}"
        entry = BirthRegistration(so_dang_ky=code, **fields)
        self.by_number[code] = entry
        self.taken.add(entry.so_dinh_danh)
        return entry

    def new_personal_id(self, *, sex: int, birth_year: int) -> str:
        while True:
            self.next_serial += 1
            number = make_personal_id(
                province=PROVINCE, sex=sex, birth_year=birth_year, serial=self.next_serial
            )
            if number not in self.taken:
                return number

    def seed(self) -> None:
        rng = random.Random(citizens.SEED)
        people = citizens.citizens()
        young = [c for c in people if c.ngay_sinh.year >= 2000 and c.so_dinh_danh[:3] == PROVINCE]
        for child in young[:SEEDED_BIRTHS]:
            mothers = [
                c
                for c in people
                if c.gioi_tinh == FEMALE and 18 <= child.ngay_sinh.year - c.ngay_sinh.year <= 45
            ]
            mother = rng.choice(mothers) if mothers else None
            place = COMMUNES[child.noi_thuong_tru.ma_xa]
            self.add(
                so_dinh_danh=child.so_dinh_danh,
                ho_va_ten=child.ho_va_ten,
                gioi_tinh=child.gioi_tinh,
                ngay_sinh=format_date(child.ngay_sinh),
                noi_sinh_ma_xa=place.code,
                noi_sinh_ten_xa=place.full_name,
                me_so_dinh_danh=mother.so_dinh_danh if mother else None,
                cha_so_dinh_danh=None,
                ngay_dang_ky=format_date(child.ngay_sinh),
            )


def first_assigned_id(*, sex: int, birth_year: int) -> str:
    """The number a fresh system assigns to its first registration of such a child (the demo's
    tour names it before the registration exists)."""
    return _Register().new_personal_id(sex=sex, birth_year=birth_year)


def _validate_birth(body: dict[str, Any]) -> None:
    check = Validation()
    if not non_empty_string(body.get("ho_va_ten"), max_length=100):
        check.add("/ho_va_ten", "required: the child's full name")
    if body.get("gioi_tinh") not in (MALE, FEMALE) or isinstance(body.get("gioi_tinh"), bool):
        check.add("/gioi_tinh", "must be 1 (nam) or 2 (nữ)")
    born = parse_date(body.get("ngay_sinh"))
    if born is None or born.year < 1900 or born > now_in_vietnam().date():
        check.add("/ngay_sinh", "must be a past date as yyyyMMdd")
    if body.get("noi_sinh_ma_xa") not in COMMUNES:
        check.add("/noi_sinh_ma_xa", "must be the code of one of the 38 communes of Lai Châu")
    for parent, required in (("me_so_dinh_danh", True), ("cha_so_dinh_danh", False)):
        value = body.get(parent)
        if value is None and not required:
            continue
        if not isinstance(value, str) or not is_well_formed(value):
            check.add(f"/{parent}", "must be a 12-digit personal identification number")
    check.raise_if_any()


def create_app(
    *,
    client_id: str = "lgsp-hub",
    client_secret: str = "bi-mat-demo",
    token_ttl: float = 300,
    clock: Callable[[], float] = time.monotonic,
    hub_url: str | None = None,
    hub_api_key: str | None = None,
    birth_topic: str = BIRTH_TOPIC,
    publish_retry_max: float = 5.0,
) -> Starlette:
    """The civil-status system; resources need a Bearer token from POST /oauth/token. With
    `hub_url` set, each new registration is published to `birth_topic` with `hub_api_key`."""
    issuer = TokenIssuer(
        client_id=client_id, client_secret=client_secret, ttl=token_ttl, clock=clock
    )
    register = _Register()
    register.seed()
    log = RequestLog()
    publisher = (
        Publisher(hub_url=hub_url, api_key=hub_api_key, retry_max=publish_retry_max)
        if hub_url
        else None
    )

    def authorise(request: Request) -> None:
        log.record_request(request)
        issuer.require_bearer(request.headers.get("authorization"))

    async def read(request: Request) -> Response:
        """One birth registration by its number (số đăng ký)."""
        authorise(request)
        entry = register.by_number.get(request.path_params["so_dang_ky"])
        if entry is None:
            raise Problem(404, "Not found", "no birth registration with this number")
        return JSONResponse(asdict(entry))

    async def search(request: Request) -> Response:
        """Birth registrations, optionally of one person (so_dinh_danh)."""
        authorise(request)
        number = personal_id_query(request)
        items = [
            asdict(e)
            for e in register.by_number.values()
            if number is None or number in (e.so_dinh_danh, e.me_so_dinh_danh, e.cha_so_dinh_danh)
        ]
        return JSONResponse({"items": items, "total": len(items)})

    async def register_birth(request: Request) -> Response:
        """Register a birth; assigns the child's personal identification number."""
        authorise(request)
        body = await json_object(request)
        _validate_birth(body)
        born = parse_date(body["ngay_sinh"])
        assert born is not None
        entry = register.add(
            so_dinh_danh=register.new_personal_id(sex=body["gioi_tinh"], birth_year=born.year),
            ho_va_ten=body["ho_va_ten"].strip(),
            gioi_tinh=body["gioi_tinh"],
            ngay_sinh=body["ngay_sinh"],
            noi_sinh_ma_xa=body["noi_sinh_ma_xa"],
            noi_sinh_ten_xa=COMMUNES[body["noi_sinh_ma_xa"]].full_name,
            me_so_dinh_danh=body["me_so_dinh_danh"],
            cha_so_dinh_danh=body.get("cha_so_dinh_danh"),
            ngay_dang_ky=format_date(now_in_vietnam().date()),
        )
        if publisher is not None:
            publisher.publish(birth_topic, asdict(entry))
        return JSONResponse(asdict(entry), status_code=201)

    async def stats(request: Request) -> Response:
        return JSONResponse({"tokens_issued": issuer.issued})

    routes = [
        Route("/oauth/token", issuer.token_endpoint, methods=["POST"]),
        Route("/api/khai-sinh", search, methods=["GET"]),
        Route("/api/khai-sinh", register_birth, methods=["POST"]),
        Route("/api/khai-sinh/{so_dang_ky}", read, methods=["GET"]),
        Route("/_sim/stats", stats, methods=["GET"]),
        HEALTH_ROUTE,
        *log.routes(),
        *(publisher.routes() if publisher else []),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if publisher is not None:
                await stack.enter_async_context(publisher.running())
            yield

    return Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={Problem: problem_handler}
    )
