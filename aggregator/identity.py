"""Pure normalizers for the identity keys entity resolution compares (no I/O, no network).

- :func:`normalize_linkedin_url` — ``http://uk.linkedin.com/in/Jane-Doe/details?x=1`` ->
  ``https://www.linkedin.com/in/jane-doe`` (scheme, ``www.``/country/mobile subdomain, query,
  fragment, trailing slash and sub-paths dropped; the slug is percent-decoded and lower-cased).
- :func:`normalize_domain` — the *registered* domain of a URL or host, from the Public Suffix List
  bundled with ``tldextract`` (no download): ``https://www.acme.co.uk/about`` -> ``acme.co.uk``,
  ``app.acme.github.io`` -> ``acme.github.io`` (private suffixes count, so two GitHub Pages sites
  never share a "domain"). Hosts without a public suffix (``localhost``, IPs) are kept whole.
- :func:`normalize_email` — trimmed and lower-cased; None unless it looks like ``local@host``.
- :func:`normalize_person_name` — accents folded, case-folded, punctuation dropped, honorifics
  (``Dr.``), post-nominals (``Jr``, ``PhD``) and middle initials removed: ``"Dr. José A.
  O'Neil-Smith, PhD"`` -> ``"jose oneil smith"``.
- :func:`normalize_company_name` — the same folding, ``&`` -> ``and``, a leading ``the`` and
  trailing legal forms removed using cleanco's term list (320 forms from 70 countries: ``Inc.``,
  ``LLC``, ``GmbH``, ``Ltd``, ``Pty Ltd``, ``B.V.``, ``S.L.``...): ``"Acme Freight, Inc."`` ->
  ``"acme freight"``. cleanco's own ``basename`` costs ~90 µs a call; matching its terms as token
  tuples here costs ~5 µs.
- :func:`normalize_country` — ISO 3166 alpha-2 from a code or a common name/alias (``"United
  States"``, ``"USA"``, ``"UK"``, ``"Deutschland"``); an unknown name stays its folded self.
- :func:`memoize` — the per-value cache of these normalizers (also used by :mod:`aggregator.resolution`).
- :func:`fold_text` — the light normalization used to compare field values (case, whitespace).
- :func:`domain_stem` — a registered domain without its public suffix: ``acme.co.uk`` -> ``acme``
  (one company's ``acme.com`` and ``acme.de`` share it).
- :func:`same_given_name` — two folded given names that are one another's nickname (``bob`` /
  ``robert``, ``kate`` / ``katherine``), from the ``nicknames`` package's hand-curated table
  (Carlton Northern's names.csv, 2,700 English name / nickname relations, Apache-2.0).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import unquote

import tldextract
from cleanco import prepare_default_terms  # type: ignore[import-untyped]

__all__ = [
    "domain_stem",
    "fold_text",
    "has_nicknames",
    "memoize",
    "normalize_city",
    "normalize_company_name",
    "normalize_country",
    "normalize_domain",
    "normalize_email",
    "normalize_linkedin_url",
    "normalize_person_name",
    "same_given_name",
]

_LINKEDIN_PATH = re.compile(r"^/(in|company|school|showcase)/([^/?#]+)", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_DROP = re.compile("['\u2019`.]")  # joined, not split: "N.V." -> "nv", "O'Neil" -> "oneil"
_NON_WORD = re.compile(r"[^0-9a-z&]+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame"})
_POST_NOMINALS = frozenset({"jr", "sr", "ii", "iii", "iv", "phd", "md", "mba", "cpa", "esq", "pe", "cfa"})
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True)


_MEMO_SIZE = 100_000
_K = TypeVar("_K", bound="str | None")
_V = TypeVar("_V")


def memoize(fn: Callable[[_K], _V]) -> Callable[[_K], _V]:
    """Memoize a one-argument normalizer in a plain dict, emptied when it reaches ``_MEMO_SIZE``.

    Not ``functools.lru_cache``: its entries are linked lists the garbage collector has to walk
    (three per hit), which cost more than the normalizing saved on 10k-hit batches.
    """
    cache: dict[_K, _V] = {}

    @functools.wraps(fn)
    def memoized(value: _K) -> _V:
        try:
            return cache[value]
        except KeyError:
            if len(cache) >= _MEMO_SIZE:
                cache.clear()
            result = cache[value] = fn(value)
            return result

    return memoized


def _fold(text: str) -> str:
    """Accents folded, case-folded: ``"Jürgen"`` -> ``"jurgen"``."""
    decomposed = unicodedata.normalize("NFKD", text.replace("ß", "ss").replace("ø", "o").replace("Ø", "o"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _tokens(text: str) -> list[str]:
    return _NON_WORD.sub(" ", _DROP.sub("", _fold(text)).replace("&", " & ")).split()


@memoize
def fold_text(value: str) -> str:
    """Case- and whitespace-insensitive form of a field value (for provenance and conflicts)."""
    return _SPACES.sub(" ", value.strip()).casefold()


_METRO_AREA = re.compile(r"^greater |(?: metropolitan| metro| bay)? area$")


@memoize
def normalize_city(value: str | None) -> str | None:
    """A city folded (:func:`fold_text`) without the metro-area wording of LinkedIn-style locations:
    ``"Greater Boston Area"``, ``"Boston Metropolitan Area"`` -> ``"boston"``, ``"San Francisco Bay
    Area"`` -> ``"san francisco"``; None for None or blank."""
    if not value or not value.strip():
        return None
    folded = fold_text(value)
    if folded.endswith(" area") or folded.startswith("greater "):
        return _METRO_AREA.sub("", folded) or folded
    return folded


def _split_url(value: str) -> tuple[str, str]:
    """``(host, path)`` of a URL, a bare host or an email address; host lower-case without port/dot.

    A small hand parser: ``urllib.parse.urlsplit`` costs 5x more and this runs once per hit.
    """
    text = value.strip()
    scheme = text.find("://")
    text = text[scheme + 3:] if scheme >= 0 else text.removeprefix("//")
    end = min((i for i in (text.find("/"), text.find("?"), text.find("#")) if i >= 0), default=len(text))
    host, path = text[:end].rsplit("@", 1)[-1], text[end:].split("?", 1)[0].split("#", 1)[0]
    if host.startswith("["):  # IPv6 literal
        return host[1:].partition("]")[0].lower(), path
    return host.split(":", 1)[0].lower().rstrip("."), path


@memoize
def normalize_linkedin_url(value: str | None) -> str | None:
    """``http://uk.linkedin.com/in/Jane-Doe/details?x=1`` -> ``https://www.linkedin.com/in/jane-doe``.

    Returns None for anything that is not a LinkedIn profile/company/school/showcase URL.
    """
    if not value or not value.strip():
        return None
    host, path = _split_url(value)
    if not (host == "linkedin.com" or host.endswith(".linkedin.com")):
        return None
    match = _LINKEDIN_PATH.match(path)
    if not match:
        return None
    slug = unquote(match.group(2)).strip().lower()
    return f"https://www.linkedin.com/{match.group(1).lower()}/{slug}" if slug else None


@memoize
def _registered(host: str) -> str:
    result = _EXTRACT.extract_str(host)
    return result.top_domain_under_public_suffix or host.removeprefix("www.")


@memoize
def normalize_domain(value: str | None) -> str | None:
    """The registered domain of a URL, host or email: ``https://www.Acme.co.uk/about`` -> ``acme.co.uk``.

    None when there is no host.
    """
    if not value or not value.strip():
        return None
    host = _split_url(value)[0]
    return _registered(host) if host and not any(c.isspace() for c in host) else None


@memoize
def domain_stem(domain: str | None) -> str | None:
    """A registered domain without its public suffix: ``acme.co.uk`` -> ``acme``; None for None."""
    if not domain:
        return None
    return _EXTRACT.extract_str(domain).domain or domain


@functools.cache
def _nicknames() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    from nicknames import NickNamer

    namer = NickNamer()
    return namer.nickname_lookup, namer.canonical_lookup


@functools.lru_cache(maxsize=65_536)
def same_given_name(a: str, b: str) -> bool:
    """Whether folded given names ``a`` and ``b`` are equal or one is a nickname of the other.

    Direct relations only: ``bob``/``robert`` yes, but not two nicknames of one name (``chris`` and
    ``tina`` are both nicknames of ``christina``, and usually two different people).
    """
    if a == b:
        return True
    nicknames, _ = _nicknames()
    return b in nicknames.get(a, ()) or a in nicknames.get(b, ())


@functools.lru_cache(maxsize=65_536)
def has_nicknames(given: str) -> bool:
    """Whether the folded given name ``given`` has a nickname or is one (see :func:`same_given_name`)."""
    nicknames, canonical = _nicknames()
    return given in nicknames or given in canonical


def normalize_email(value: str | None) -> str | None:
    """``" Jane.Doe@Acme.COM "`` -> ``"jane.doe@acme.com"``; None unless it looks like an address."""
    if not value:
        return None
    text = value.strip().lower().removeprefix("mailto:")
    return text if _EMAIL.match(text) else None


@memoize
def normalize_person_name(value: str | None) -> str | None:
    """Folded tokens, no honorific, post-nominal or middle initial: ``"Dr. Jane A. Doe, PhD"`` -> ``"jane doe"``."""
    if not value:
        return None
    tokens = [t for t in _tokens(value) if t != "&"]
    while len(tokens) > 1 and tokens[0] in _HONORIFICS:
        tokens.pop(0)
    while len(tokens) > 1 and tokens[-1] in _POST_NOMINALS:
        tokens.pop()
    if len(tokens) > 2:  # middle initials: "Jane A. Doe" -> "jane doe"
        tokens = [tokens[0], *(t for t in tokens[1:-1] if len(t) > 1), tokens[-1]]
    return " ".join(tokens) or None


def _legal_forms() -> dict[int, frozenset[tuple[str, ...]]]:
    """cleanco's legal-form terms as token tuples, grouped by length (longest first)."""
    forms: dict[int, set[tuple[str, ...]]] = {}
    for _, parts in prepare_default_terms():
        tokens = tuple(_tokens(" ".join(parts)))
        if tokens:
            forms.setdefault(len(tokens), set()).add(tuple("and" if t == "&" else t for t in tokens))
    return {size: frozenset(forms[size]) for size in sorted(forms, reverse=True)}


_LEGAL_FORMS = _legal_forms()


@memoize
def normalize_company_name(value: str | None) -> str | None:
    """The base name: folded, ``&`` -> ``and``, no leading ``the``, no trailing legal forms.

    ``"Acme Freight, Inc."``, ``"ACME Freight GmbH & Co. KG"`` and ``"The Acme Freight Ltd"`` all give
    ``"acme freight"``. At least one token is always kept (``"The Company"`` -> ``"company"``).
    """
    if not value:
        return None
    tokens = ["and" if t == "&" else t for t in _tokens(value)]
    if len(tokens) > 1 and tokens[0] == "the":
        tokens.pop(0)
    stripped = True
    while stripped:
        stripped = False
        for size, forms in _LEGAL_FORMS.items():
            if len(tokens) > size and tuple(tokens[-size:]) in forms:
                del tokens[-size:]
                stripped = True
                break
        if len(tokens) > 1 and tokens[-1] == "and":  # "Smith & Co" -> "smith and" -> "smith"
            tokens.pop()
            stripped = True
    return " ".join(tokens) or None


_COUNTRIES: dict[str, tuple[str, ...]] = {
    "US": ("united states", "united states of america", "usa", "us", "america"),
    "GB": ("united kingdom", "uk", "gbr", "great britain", "britain", "england", "scotland", "wales",
           "northern ireland"),
    "DE": ("germany", "deu", "deutschland"), "FR": ("france", "fra"),
    "NL": ("netherlands", "the netherlands", "nld", "holland"), "IE": ("ireland", "irl"),
    "SE": ("sweden", "swe", "sverige"), "ES": ("spain", "esp", "espana"),
    "CH": ("switzerland", "che", "schweiz", "suisse"), "IL": ("israel", "isr"),
    "SG": ("singapore", "sgp"), "IN": ("india", "ind"), "AU": ("australia", "aus"),
    "CA": ("canada", "can"), "IT": ("italy", "ita"), "BE": ("belgium", "bel"), "AT": ("austria", "aut"),
    "DK": ("denmark", "dnk"), "NO": ("norway", "nor"), "FI": ("finland", "fin"), "PL": ("poland", "pol"),
    "PT": ("portugal", "prt"), "JP": ("japan", "jpn"), "CN": ("china", "chn"), "BR": ("brazil", "bra"),
    "MX": ("mexico", "mex"), "NZ": ("new zealand", "nzl"), "KR": ("south korea", "korea", "kor"),
    "HK": ("hong kong", "hkg"), "AE": ("united arab emirates", "uae", "are"),
}
_COUNTRY_BY_ALIAS = {alias: iso2 for iso2, aliases in _COUNTRIES.items() for alias in aliases}


@memoize
def normalize_country(value: str | None) -> str | None:
    """ISO 3166 alpha-2 (``"US"``) from a code, ISO3 code, name or alias; unknown names stay folded."""
    if not value:
        return None
    text = " ".join(t for t in _tokens(value) if t != "&")
    if not text:
        return None
    if text in _COUNTRY_BY_ALIAS:
        return _COUNTRY_BY_ALIAS[text]
    return text.upper() if len(text) == 2 else text
