"""Who Orbit can find: the people index and identity-signal normalizers (contract §3.1, §5).

:class:`PeopleIndex` is built once per emulator over the people Orbit covers (person *and*
employer visible to ``"orbit"``, :meth:`World.visible`) and looks people up by every identity
signal a Deep Search start accepts:

- profile ids: ``orb_<12 hex>`` (stable per person: a hash of seed and hidden id) and the alias
  ``orbit_<slug>`` that resolves to it (INF §5 "alias ids resolve transparently");
- LinkedIn slug (any ``www.``/country subdomain, scheme optional, trailing slash, query);
- work email (case-insensitive), phone number (digits only; 10-digit NANP numbers get ``1``);
- GitHub username (``usernames`` or a ``https://github.com/<username>`` URL) and the Orbit
  profile URL ``https://orbitsearch.com/<slug>``.

It also indexes people by canonical title and companies by lower-case name, legal name and
domain, so intent matching never scans the whole world when a title is given.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import unquote, urlsplit

from providers.sandbox.entities import PersonEntity
from providers.sandbox.world import World

__all__ = ["PeopleIndex", "fold", "github_username", "linkedin_slug", "phone_digits", "split_url", "words"]

PROVIDER = "orbit"
_ALIAS_PREFIX = "orbit_"


def fold(text: str) -> str:
    """Case- and accent-insensitive form with single spaces ("Jürgen  Müller" -> "jurgen muller")."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(folded.casefold().split())


def split_url(url: str) -> tuple[str, str, str] | None:
    """``(scheme, host, path)`` of an http(s) URL (scheme optional: ``https`` assumed), lower-case
    host without ``www.``; None when it is not an http(s) URL with a host."""
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() not in ("http", "https") or "." not in host or " " in text:
        return None
    return parts.scheme.lower(), host.removeprefix("www."), unquote(parts.path)


def linkedin_slug(url: str) -> str | None:
    """The public id of a LinkedIn *profile* URL (``linkedin.com/in/<slug>``), lower case."""
    parts = split_url(url)
    if parts is None:
        return None
    _, host, path = parts
    if host != "linkedin.com" and not host.endswith(".linkedin.com"):
        return None
    match = re.fullmatch(r"/in/([^/]+)/?", path)
    return match.group(1).lower() if match else None


def github_username(url: str) -> str | None:
    """``<username>`` of ``https://github.com/<username>`` (lower case), else None."""
    parts = split_url(url)
    if parts is None or parts[1] != "github.com":
        return None
    match = re.fullmatch(r"/([A-Za-z0-9-]+)/?", parts[2])
    return match.group(1).lower() if match else None


def words(text: str) -> list[str]:
    """Lower-case keyword tokens of ``text`` (letters, digits, ``+ # -`` inside words)."""
    return re.findall(r"[a-z0-9][a-z0-9+#-]*", fold(text))


def phone_digits(phone: str) -> str:
    """The digits of a phone number ("+1 (212) 555-0100" -> "12125550100")."""
    return re.sub(r"\D", "", phone)


def profile_id_for(seed: int, true_id: str) -> str:
    """The ``orb_<12 hex>`` profile id of a world person (stable per seed)."""
    digest = hashlib.blake2b(f"{seed}:orbit-profile:{true_id}".encode(), digest_size=6)
    return "orb_" + digest.hexdigest()


class PeopleIndex:
    """Lookups over the people Orbit covers (see the module docstring)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.people: tuple[PersonEntity, ...] = tuple(
            p for p in world.people
            if world.visible(PROVIDER, p.true_id) and world.visible(PROVIDER, p.company_id)
        )
        self._ids = {p.true_id: self._make_id(p.true_id) for p in self.people}
        self._by_id = {pid: p for p, pid in zip(self.people, self._ids.values(), strict=True)}
        self._by_slug = {p.linkedin_slug.lower(): p for p in self.people}
        self._by_email = {p.email.lower(): p for p in self.people}
        self._by_phone = {phone_digits(p.phone): p for p in self.people}
        self._by_github = {p.github_username.lower(): p for p in self.people if p.github_username}
        self._by_title: dict[str, list[PersonEntity]] = {}
        for p in self.people:
            self._by_title.setdefault(p.title, []).append(p)
        self._tokens: dict[str, frozenset[str]] = {}
        self._companies: dict[str, str] = {}
        for c in world.companies:
            for key in (c.name, c.legal_name, c.domain):
                self._companies.setdefault(fold(key), c.true_id)

    def _make_id(self, true_id: str) -> str:
        return profile_id_for(self.world.seed, true_id)

    def profile_id(self, person: PersonEntity) -> str:
        """The canonical Orbit profile id of ``person`` (``orb_<12 hex>``)."""
        return self._ids.get(person.true_id) or self._make_id(person.true_id)

    @staticmethod
    def alias_id(person: PersonEntity) -> str:
        """The alias profile id of ``person`` (INF §5: ``orbit_<slug>``)."""
        return _ALIAS_PREFIX + person.linkedin_slug

    def by_profile_id(self, profile_id: str) -> PersonEntity | None:
        """The person of a canonical or alias profile id."""
        if profile_id.startswith(_ALIAS_PREFIX):
            return self._by_slug.get(profile_id[len(_ALIAS_PREFIX):].lower())
        return self._by_id.get(profile_id)

    def by_linkedin(self, url: str) -> PersonEntity | None:
        slug = linkedin_slug(url)
        return self._by_slug.get(slug) if slug else None

    def by_email(self, email: str) -> PersonEntity | None:
        return self._by_email.get(email.strip().lower())

    def by_phone(self, phone: str) -> PersonEntity | None:
        digits = phone_digits(phone)
        return self._by_phone.get(digits) or (
            self._by_phone.get("1" + digits) if len(digits) == 10 else None
        )

    def by_username(self, username: str) -> PersonEntity | None:
        return self._by_github.get(username.strip().removeprefix("@").lower())

    def by_url(self, url: str) -> PersonEntity | None:
        """A LinkedIn profile, GitHub profile or Orbit profile URL; None for any other URL."""
        parts = split_url(url)
        if parts is not None and parts[1] == "orbitsearch.com":
            return self._by_slug.get(parts[2].strip("/").lower())
        username = github_username(url)
        return self.by_username(username) if username else self.by_linkedin(url)

    def with_title(self, title: str) -> list[PersonEntity]:
        """Covered people whose canonical title is ``title``."""
        return self._by_title.get(title, [])

    def keyword_tokens(self, true_id: str, text: str) -> frozenset[str]:
        """Lower-case words of ``text`` (memoized under ``true_id``: a person or company id)."""
        cached = self._tokens.get(true_id)
        if cached is None:
            cached = self._tokens[true_id] = frozenset(words(text))
        return cached

    def company_id(self, name_or_domain: str) -> str | None:
        """The hidden id of the company named (name, legal name or domain/URL), if any."""
        text = name_or_domain.strip()
        parts = split_url(text) if "." in text and " " not in text else None
        key = fold(parts[1]) if parts is not None else fold(text)
        return self._companies.get(key)
