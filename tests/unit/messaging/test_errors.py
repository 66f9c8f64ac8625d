"""Messaging's error tree, and how each backend's client errors land in it (at one place each)."""

from __future__ import annotations

import inspect
import sqlite3

import kafka.errors as kafka
import pytest
from sqlalchemy import exc as sa

from messaging import errors
from messaging.database_broker import translate
from messaging.errors import (
    BrokerTimeout,
    BrokerUnavailable,
    DatabaseUnavailable,
    MessageRejected,
    MessageTooLarge,
    MessagingError,
    NotAcknowledged,
    NotAuthorized,
    Terminal,
    TopicMisconfigured,
    TopicRefused,
    Transient,
    terminal_cause,
)
from messaging.kafka_broker import _translate


def concrete() -> list[type[MessagingError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, MessagingError) and cls not in (MessagingError, Transient, Terminal)
    ]


@pytest.mark.parametrize("cls", concrete(), ids=lambda cls: cls.__name__)
def test_every_error_carries_exactly_one_marker_and_is_in_the_tree(
    cls: type[MessagingError],
) -> None:
    assert issubclass(cls, Transient) != issubclass(cls, Terminal)
    assert cls.__name__ in (errors.__doc__ or ""), "the module docstring draws the tree"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        # What an operator must change: terminal.
        (kafka.MessageSizeTooLargeError(), MessageTooLarge),
        (kafka.RecordListTooLargeError(), MessageTooLarge),
        (kafka.TopicAuthorizationFailedError(), NotAuthorized),
        (kafka.ClusterAuthorizationFailedError(), NotAuthorized),
        (kafka.InvalidTopicError(), TopicRefused),
        (kafka.InvalidPartitionsError(), TopicRefused),
        (kafka.InvalidReplicationFactorError(), TopicRefused),
        (kafka.InvalidConfigurationError(), TopicRefused),
        (kafka.PolicyViolationError(), TopicRefused),
        (kafka.InvalidRecordError(), MessageRejected),
        (kafka.InvalidTimestampError(), MessageRejected),
        (AssertionError("Unrecognized partition"), TopicMisconfigured),
        # What passes: transient.
        (kafka.KafkaTimeoutError(), BrokerTimeout),
        (kafka.RequestTimedOutError(), BrokerTimeout),
        (kafka.NoBrokersAvailable(), BrokerUnavailable),
        (kafka.KafkaConnectionError(), BrokerUnavailable),
        (kafka.NodeNotReadyError(), BrokerUnavailable),
        (kafka.NotEnoughReplicasError(), NotAcknowledged),
        (kafka.LeaderNotAvailableError(), NotAcknowledged),
        # kafka-python calls it final (retriable=False); tansu answers it for the first records
        # of a topic it has just created again, and the next try succeeds.
        (kafka.UnknownError(), NotAcknowledged),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else "",
)
def test_kafka_errors_are_translated_by_what_a_retry_can_do(
    error: Exception, expected: type[MessagingError]
) -> None:
    translated = _translate(error, "producing", topic="dossier.status", producing=True)
    assert type(translated) is expected
    assert translated.topic == "dossier.status"
    assert translated.__cause__ is error


def test_a_broker_error_outside_a_produce_is_the_broker_being_away() -> None:
    translated = _translate(kafka.UnknownTopicOrPartitionError(), "reading")
    assert type(translated) is BrokerUnavailable and translated.topic is None


SECRET_VALUE = {"value": '{"CCCD": "001099012345"}'}  # a message's value, as a parameter


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (sa.DataError("INSERT", SECRET_VALUE, sqlite3.DataError("bad")), MessageRejected),
        (
            sa.OperationalError("INSERT", SECRET_VALUE, sqlite3.OperationalError("locked")),
            DatabaseUnavailable,
        ),
        (
            sa.IntegrityError("INSERT", SECRET_VALUE, sqlite3.IntegrityError("UNIQUE")),
            DatabaseUnavailable,
        ),
        (sa.TimeoutError("QueuePool limit reached"), DatabaseUnavailable),
    ],
    ids=["data", "operational", "integrity", "pool-timeout"],
)
def test_database_errors_are_translated_without_the_statement_or_its_values(
    error: sa.SQLAlchemyError, expected: type[MessagingError]
) -> None:
    translated = translate(error, "the broker log could not be written", topic="civil.birth")
    assert type(translated) is expected
    assert translated.topic == "civil.birth"
    # The statement's parameters hold messages (personal data): never in the sentence.
    assert "001099012345" not in str(translated) and "INSERT" not in str(translated)


def test_the_terminal_cause_is_found_inside_task_groups() -> None:
    refused = TopicMisconfigured("fewer partitions", topic="t")
    grouped = ExceptionGroup("tasks", [ValueError("x"), ExceptionGroup("inner", [refused])])
    assert terminal_cause(grouped) is refused
    assert terminal_cause(ExceptionGroup("tasks", [BrokerTimeout("slow")])) is None
    assert terminal_cause(BrokerUnavailable("away")) is None
