"""Realistic exchange records for the audit benchmark: who asks, for what, about whom.

One vocabulary serves both ends: `ExchangeRows` builds the records the data plane hands to the
audit writer (`gateway/exchange/calls.py`, `Call.record`), and `bench/audit_data.py` generates the
same kind of rows inside PostgreSQL with `generate_sql` (10^7 of them in minutes). All data is
synthetic: 30 consumer applications of 12 agencies, 40 services, 1,000,000 data subjects whose
12-digit personal identification numbers (số định danh cá nhân) are made from their rank, hashed
with HMAC-SHA256 under the bench's subject key exactly as `Runtime.subject_hash` does.

Subjects are skewed the way lookups of citizens are (a few people's records are read often,
most people's rarely): a record's subject rank is floor(S · u²) for u uniform in [0, 1), so the
subject of rank r has about 5,000/√r records per 10^7 (rank 0: ~10,000; rank 10^4: ~50; the
tail: ~5) — a Zipf-like power law with exponent 1/2.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from audit.records import Record, RecordKind, new_record_id

SUBJECTS = 1_000_000
SUBJECT_KEY = (
    b"lgsp-bench-audit-subject-key-0123456789abcdef"  # the bench hub's LGSP_SUBJECT_HMAC_KEY
)
SPAN = timedelta(days=730)

# Province codes of the personal id (the first three digits); Lai Châu is 012.
PROVINCES = ("001", "002", "004", "008", "010", "011", "012", "014", "015", "017", "019", "020")
AGENCIES = tuple(
    f"000.{a:02d}.{b:02d}.H12" for a, b in [(0, 12)] + [(i, 30 + i) for i in range(1, 12)]
)
CONSUMERS = tuple(
    f"{kind}-{n:02d}" for kind in ("mot-cua", "dvc-tinh", "tai-chinh") for n in range(10)
)
SERVICES = tuple(
    f"{name}-{n}"
    for name in ("dan-cu", "ho-tich", "dat-dai", "bhxh", "thue", "doanh-nghiep", "giao-duc", "y-te")
    for n in range(1, 6)
)
ROUTES = (
    "POST /cong-dan/tra-cuu",
    "POST /cong-dan/xac-thuc",
    "GET /ho-so/{ma}",
    "POST /giay-to/doi-chieu",
)
PURPOSES = ("giai-quyet-tthc", "xac-minh-nhan-than", "thanh-tra", "thong-ke", "bench")
# hub status -> share of records (the provider's status is the same, or None when the hub refused)
STATUSES = ((200, 0.93), (404, 0.03), (403, 0.01), (422, 0.01), (502, 0.01), (504, 0.01))


def personal_id(rank: int) -> str:
    """The 12-digit số định danh of the subject of this rank: province, century and sex, year,
    serial (the rank itself, so every rank has its own id)."""
    province = PROVINCES[rank % len(PROVINCES)]
    century_sex = str(rank % 4)  # 0/1: 1900s man/woman, 2/3: 2000s
    year = f"{(rank * 37) % 100:02d}"
    return f"{province}{century_sex}{year}{rank:06d}"


def subject_hash(identifier: str, key: bytes = SUBJECT_KEY) -> str:
    """As `Runtime.subject_hash`: HMAC-SHA256 of the stripped identifier, hex."""
    return hmac.new(key, identifier.strip().encode(), hashlib.sha256).hexdigest()


def zipf_rank(rng: random.Random) -> int:
    return int(SUBJECTS * rng.random() ** 2)


@dataclass
class ExchangeRows:
    """Rows as the data plane writes them, made cheaply: a pool of varied rows, each handed out
    with a fresh id, request id and time (what `Exchange.record` computes per call)."""

    seed: int = 1
    pool: int = 4096

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self._rows = [self._row(rng) for _ in range(self.pool)]
        self._next = 0

    def _row(self, rng: random.Random) -> dict[str, Any]:
        consumer = rng.randrange(len(CONSUMERS))
        service = rng.randrange(len(SERVICES))
        status = rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0]
        refused = status in (403, 422)
        request = rng.randbytes(1024)
        response = rng.randbytes(900 if status == 200 else 200)
        return {
            "kind": RecordKind.EXCHANGE,
            "trace_id": rng.randbytes(16).hex(),
            "consumer": CONSUMERS[consumer],
            "agency": AGENCIES[consumer % len(AGENCIES)],
            "service": SERVICES[service],
            "version": "v1",
            "route": ROUTES[service % len(ROUTES)],
            "purpose": PURPOSES[rng.randrange(len(PURPOSES))],
            "grant_id": 1 + consumer * len(SERVICES) + service,
            "subject_hash": subject_hash(personal_id(zipf_rank(rng))),
            "provider_status": None if refused else status,
            "hub_status": status,
            "latency_us": rng.randrange(2_000, 80_000),
            "upstream_latency_us": None if refused else rng.randrange(1_000, 60_000),
            "request_size": len(request),
            "response_size": len(response),
            "request_sha256": hashlib.sha256(request).hexdigest(),
            "response_sha256": hashlib.sha256(response).hexdigest(),
            "attempts": None if refused else 1,
            "error": "upstream timed out after 30 s" if status == 504 else None,
        }

    def next(self) -> Record:
        row = dict(self._rows[self._next % self.pool])
        self._next += 1
        row["request_id"] = new_record_id()
        return Record(**row)  # a new id, and the time now


def hmac_pads(key: bytes = SUBJECT_KEY) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys (RFC 2104), so PostgreSQL can compute HMAC-SHA256 with
    its built-in sha256(): H(opad || H(ipad || m))."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\x00")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def _sql_array(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"


def _sql_uuid7(ms: str, noise: str) -> str:
    """A UUIDv7 string in SQL from a millisecond expression and a 32-hex noise expression."""
    hexed = (
        f"lpad(to_hex({ms}), 12, '0') || '7' || substr({noise}, 1, 3) "
        f"|| substr('89ab', 1 + mod(get_byte(decode(substr({noise}, 4, 2), 'hex'), 0), 4), 1) "
        f"|| substr({noise}, 6, 15)"
    )
    return (
        f"(SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-' "
        f"|| substr(h, 17, 4) || '-' || substr(h, 21, 12) FROM (SELECT {hexed} AS h) AS u)"
    )


def generate_sql() -> str:
    """INSERT … SELECT of the records g = %(first)s … %(last)s of %(total)s, in time order
    over SPAN ending at %(end)s; parameters `ipad`, `opad` (bytea) for the subjects' HMAC."""
    cumulative, statuses = 0.0, []
    for status, share in STATUSES:
        cumulative += share
        statuses.append((round(cumulative, 6), status))
    status_case = " ".join(f"WHEN r_status < {c} THEN {s}" for c, s in statuses[:-1])
    status_case = f"CASE {status_case} ELSE {statuses[-1][1]} END"
    provinces = _sql_array(PROVINCES)
    pid = (
        f"({provinces})[1 + mod(rank, {len(PROVINCES)})] || mod(rank, 4)::text "
        f"|| lpad(mod(rank * 37, 100)::text, 2, '0') || lpad(rank::text, 6, '0')"
    )
    span_us = int(SPAN.total_seconds() * 1e6)
    return f"""
INSERT INTO exchange_record (
    id, kind, time, request_id, trace_id, consumer, agency, service, version, route, purpose,
    grant_id, subject_hash, provider_status, hub_status, latency_us, upstream_latency_us,
    request_size, response_size, request_sha256, response_sha256, attempts, error)
SELECT
    {_sql_uuid7("ms", "n1")}, 'exchange', t, {_sql_uuid7("ms", "n2")}, n3,
    ({_sql_array(CONSUMERS)})[1 + consumer],
    ({_sql_array(AGENCIES)})[1 + mod(consumer, {len(AGENCIES)})],
    ({_sql_array(SERVICES)})[1 + service], 'v1',
    ({_sql_array(ROUTES)})[1 + mod(service, {len(ROUTES)})],
    ({_sql_array(PURPOSES)})[1 + purpose], 1 + consumer * {len(SERVICES)} + service,
    encode(sha256(%(opad)s || sha256(%(ipad)s || convert_to({pid}, 'UTF8'))), 'hex'),
    CASE WHEN status IN (403, 422) THEN NULL ELSE status END, status,
    2000 + (r_latency * 78000)::int,
    CASE WHEN status IN (403, 422) THEN NULL ELSE 1000 + (r_latency * 59000)::int END,
    1024, CASE WHEN status = 200 THEN 900 ELSE 200 END,
    encode(sha256(convert_to(n1 || 'q', 'UTF8')), 'hex'),
    encode(sha256(convert_to(n2 || 'a', 'UTF8')), 'hex'),
    CASE WHEN status IN (403, 422) THEN NULL ELSE 1 END,
    CASE WHEN status = 504 THEN 'upstream timed out after 30 s' END
FROM (
    SELECT t, (extract(epoch FROM t) * 1000)::bigint AS ms, n1, n2, n3,
        floor({SUBJECTS} * random() ^ 2)::bigint AS rank,
        floor(random() * {len(CONSUMERS)})::int AS consumer,
        floor(random() * {len(SERVICES)})::int AS service,
        floor(random() * {len(PURPOSES)})::int AS purpose,
        {status_case} AS status, random() AS r_latency
    FROM (
        SELECT %(end)s::timestamptz - make_interval(secs => {span_us / 1e6}
                * (1 - (g - 1 + random())::float8 / %(total)s)) AS t,
            md5(g::text || 'a') AS n1, md5(g::text || 'b') AS n2, md5(g::text || 'c') AS n3,
            random() AS r_status
        FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
    ) AS base
) AS drawn
"""


def span_start(end: datetime) -> datetime:
    return end - SPAN
