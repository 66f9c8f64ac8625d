"""What a registry operation can refuse, as one tree the HTTP layer maps to problems.

RegistryError
├── Invalid     the input breaks a rule (422), with a JSON pointer per error
├── NotFound    no such object (404)
├── Conflict    the registry's state forbids it: duplicates, references, lifecycle (409)
└── Forbidden   the caller may not touch this object (403)
"""

from __future__ import annotations

from pydantic import ValidationError

from registry.types import error_location, pointer


class RegistryError(Exception):
    def __init__(self, detail: str, *, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors

    def under(self, prefix: str) -> RegistryError:
        """The same error with its pointers moved under `prefix` (an object in a manifest)."""
        errors = [{**e, "pointer": prefix + e["pointer"]} for e in self.errors or []]
        return type(self)(
            self.detail, errors=errors or [{"pointer": prefix, "message": self.detail}]
        )


class Invalid(RegistryError):
    @classmethod
    def at(cls, where: str, message: str) -> Invalid:
        return cls(message, errors=[{"pointer": where, "message": message}])

    @classmethod
    def from_validation(cls, exc: ValidationError, prefix: str = "") -> Invalid:
        errors = []
        for error in exc.errors():
            loc = error_location(error)
            errors.append({"pointer": prefix + pointer(*loc), "message": error["msg"]})
        count = len(errors)
        return cls(f"{count} error{'s' if count != 1 else ''} in the input", errors=errors)


class NotFound(RegistryError):
    @classmethod
    def of(cls, kind: str, key: str) -> NotFound:
        return cls(f"there is no {kind} {key!r}")


class Conflict(RegistryError):
    pass


class Forbidden(RegistryError):
    pass
