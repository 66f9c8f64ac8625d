"""What a schema-registry operation can refuse, as one tree the HTTP layer maps to answers.

Each class carries the HTTP status of the admin API (problem+json) and the status and
`error_code` a Confluent Schema Registry client expects, so both surfaces say the same thing.

SchemaError
├── SchemaInvalid        the schema or input breaks a rule (422 / 42201), with pointers
├── LevelInvalid         unknown compatibility level or policy (422 / 42203)
├── VersionInvalid       not a version number nor "latest" (422 / 42202)
├── SubjectNotFound      no such subject (404 / 40401)
├── VersionNotFound      no such version of the subject (404 / 40402)
├── SchemaNotFound       no schema with that id / content (404 / 40403)
├── StillReferenced      a service, topic or schema still uses the version (409 / 42206)
├── Incompatible         the candidate breaks the subject's compatibility rule (409 / 409)
└── Concurrent           another version was registered at the same moment (409 / 40901)

Who may change a subject is the registry's rule (registry.crud.schemas), refused as Forbidden.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SchemaError(Exception):
    status: ClassVar[int] = 400
    confluent_status: ClassVar[int] = 400
    error_code: ClassVar[int] = 400
    kind: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extra = extra or {}


class SchemaInvalid(SchemaError):
    status, confluent_status, error_code = 422, 422, 42201
    kind, title = "invalid-schema", "Invalid schema"

    @classmethod
    def at(cls, where: str, message: str) -> SchemaInvalid:
        return cls(message, errors=[{"pointer": where, "message": message}])


class LevelInvalid(SchemaError):
    status, confluent_status, error_code = 422, 422, 42203
    kind, title = "validation-error", "Invalid input"


class VersionInvalid(SchemaError):
    status, confluent_status, error_code = 422, 422, 42202
    kind, title = "validation-error", "Invalid input"


class SubjectNotFound(SchemaError):
    status, confluent_status, error_code = 404, 404, 40401
    kind, title = "not-found", "Not found"


class VersionNotFound(SchemaError):
    status, confluent_status, error_code = 404, 404, 40402
    kind, title = "not-found", "Not found"


class SchemaNotFound(SchemaError):
    status, confluent_status, error_code = 404, 404, 40403
    kind, title = "not-found", "Not found"


class StillReferenced(SchemaError):
    status, confluent_status, error_code = 409, 422, 42206
    kind, title = "conflict", "Conflict"


class Incompatible(SchemaError):
    status, confluent_status, error_code = 409, 409, 409
    kind, title = "incompatible-schema", "Incompatible schema"


class Concurrent(SchemaError):
    status, confluent_status, error_code = 409, 409, 40901
    kind, title = "conflict", "Conflict"
