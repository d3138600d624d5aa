"""Seeded pools of realistic names and addresses: Faker is slow per call, so each sandbox draws from pools."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from faker import Faker


@dataclass(frozen=True)
class People:
    first_names: list[str]
    last_names: list[str]
    streets: list[str]
    postcodes: list[str]
    cities: list[str]
    companies: list[str]
    phones: list[str]

    @classmethod
    def make(cls, locale: str, seed: int, size: int = 300) -> People:
        fake = Faker(locale)
        fake.seed_instance(seed)
        return cls(
            first_names=[fake.first_name() for _ in range(size)],
            last_names=[fake.last_name() for _ in range(size)],
            streets=[fake.street_address() for _ in range(size)],
            postcodes=[fake.postcode() for _ in range(size)],
            cities=[fake.city() for _ in range(size)],
            companies=[fake.company() for _ in range(size)],
            phones=[fake.phone_number() for _ in range(size)],
        )


def email_for(rng: random.Random, first: str, last: str, domains: tuple[str, ...]) -> str:
    table = str.maketrans({"å": "aa", "ø": "o", "æ": "ae", "ä": "ae", "ö": "oe", "ü": "ue", "é": "e", " ": "", "'": ""})
    local = f"{first}.{last}".lower().translate(table)
    local = "".join(ch for ch in local if ch.isascii() and (ch.isalnum() or ch in ".-"))
    return f"{local}{rng.randint(1, 99)}@{rng.choice(domains)}"


def moment_between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A whole-second instant in [start, end]."""
    span = max(0, int((end - start).total_seconds()))
    return start + timedelta(seconds=rng.randint(0, span))
